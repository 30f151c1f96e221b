"""The model store: trained models saved as .keras files with JSON metadata.

Each model is two files in the store's folder, NAME.keras and NAME.json, each written
to a temporary file first and then renamed, so a crash never leaves half a model.
Names are checked so that no name can reach outside the folder. Models are loaded
with Keras' safe mode (no arbitrary code from a file) and must take 28x28 images and
give 10 class probabilities.
"""

from __future__ import annotations

import datetime as _datetime
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


def check_name(name: str) -> str:
    """Return a clean model name, or raise ValueError saying what is allowed."""
    cleaned = name.strip() if isinstance(name, str) else ""
    if cleaned.endswith(".keras"):
        cleaned = cleaned[: -len(".keras")]
    if not cleaned:
        raise ValueError("Give the model a name.")
    if "/" in cleaned or "\\" in cleaned or ".." in cleaned or not _NAME.match(cleaned):
        raise ValueError(
            f"{name!r} is not a valid model name: use letters, digits, spaces, '-', '_' or '.', "
            "start with a letter or digit, at most 64 characters, and no '..' or slashes."
        )
    return cleaned


def check_model_shape(model) -> None:
    """Raise ValueError unless the model takes 28x28 images and outputs 10 classes."""
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1 or tuple(inputs[0].shape[1:]) != (28, 28):
        shapes = [tuple(tensor.shape) for tensor in inputs]
        raise ValueError(f"This model takes inputs of shape {shapes}; MNIST Lab needs models that take 28x28 images.")
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1 or tuple(outputs[0].shape[1:]) != (10,):
        shapes = [tuple(tensor.shape) for tensor in outputs]
        raise ValueError(f"This model outputs shape {shapes}; MNIST Lab needs 10 class scores.")


def load_model_file(path: str | os.PathLike):
    """Load a .keras file in safe mode and check its shape."""
    import keras

    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: MNIST Lab loads Keras' .keras files only.")
    if not path.is_file():
        raise ValueError(f"{path}: no such model file.")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # noqa: BLE001 (Keras raises many kinds; the user needs one message)
        raise ValueError(f"{path}: cannot be loaded as a Keras model ({type(error).__name__}: {error}).") from error
    check_model_shape(model)
    return model


def _atomic_replace(target: Path, write) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    os.close(descriptor)
    try:
        write(Path(temporary))
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def model_to_bytes(model) -> bytes:
    """The .keras file of a model, for a download button (plain Keras layers only)."""
    from mnistlab.layers import portable_model

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        portable_model(model).save(path)
        return path.read_bytes()


@dataclass(frozen=True)
class StoredModel:
    """A model in the store: its name, file and metadata."""

    name: str
    path: Path
    metadata: dict

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.metadata.get("class_names") or [str(digit) for digit in range(10)])

    @property
    def normalization(self) -> str:
        return self.metadata.get("normalization", "divide_255")

    def describe(self) -> str:
        accuracy = self.metadata.get("test_accuracy")
        accuracy_text = f", test accuracy {accuracy:.1%}" if isinstance(accuracy, (int, float)) else ""
        return f"{self.name} ({self.metadata.get('dataset', '?')}, {self.metadata.get('arch', '?')}{accuracy_text})"


class ModelStore:
    """A folder of saved models (MNISTLAB_MODELS_DIR, or ./models by default)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root or os.environ.get("MNISTLAB_MODELS_DIR") or "models").resolve()

    def _paths(self, name: str) -> tuple[Path, Path]:
        name = check_name(name)
        model_path = (self.root / f"{name}.keras").resolve()
        # A last guard: the resolved file must sit directly in the store folder.
        if model_path.parent != self.root:
            raise ValueError(f"{name!r} would be saved outside the model store.")
        return model_path, model_path.with_suffix(".json")

    def save(self, name: str, model, metadata: dict) -> StoredModel:
        """Save (or replace) a model and its metadata (plain Keras layers only, so the file loads anywhere)."""
        from mnistlab.layers import portable_model

        check_model_shape(model)
        model = portable_model(model)
        model_path, metadata_path = self._paths(name)
        self.root.mkdir(parents=True, exist_ok=True)
        metadata = dict(metadata, name=model_path.stem, saved_at=_datetime.datetime.now(_datetime.timezone.utc).isoformat(timespec="seconds"))
        _atomic_replace(model_path, model.save)
        _atomic_replace(metadata_path, lambda path: path.write_text(json.dumps(metadata, indent=2, default=str)))
        return StoredModel(model_path.stem, model_path, metadata)

    def list(self) -> list[StoredModel]:
        """The saved models, newest first."""
        if not self.root.is_dir():
            return []
        models = []
        for model_path in self.root.glob("*.keras"):
            if model_path.name.startswith("."):
                continue
            metadata_path = model_path.with_suffix(".json")
            try:
                metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
            except (OSError, ValueError):
                metadata = {}
            models.append(StoredModel(model_path.stem, model_path, metadata if isinstance(metadata, dict) else {}))
        return sorted(models, key=lambda stored: stored.path.stat().st_mtime, reverse=True)

    def get(self, name: str) -> StoredModel:
        model_path, metadata_path = self._paths(name)
        if not model_path.is_file():
            raise ValueError(f"No saved model called {name!r} in {self.root}.")
        metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
        return StoredModel(model_path.stem, model_path, metadata)

    def load(self, name: str):
        """Load a saved model (safe mode, shape checked); returns (model, StoredModel)."""
        stored = self.get(name)
        return load_model_file(stored.path), stored

    def delete(self, name: str) -> None:
        model_path, metadata_path = self._paths(name)
        model_path.unlink(missing_ok=True)
        metadata_path.unlink(missing_ok=True)


def metadata_for(trained) -> dict:
    """The metadata saved next to a model trained by the engine."""
    result = trained.result
    return {
        "dataset": result.dataset,
        "arch": result.arch,
        "class_names": list(trained.class_names),
        "normalization": result.normalization,
        "train_accuracy": result.train_accuracy,
        "val_accuracy": result.val_accuracy,
        "test_accuracy": result.test_accuracy,
        "test_loss": result.test_loss,
        "epochs_run": result.epochs_run,
        "stop_reason": result.stop_reason,
        "parameters": result.parameters,
        "data_source": result.data_source,
        "trained_on": _datetime.date.today().isoformat(),
    }
