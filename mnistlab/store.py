"""The model store: trained models saved as .keras files with JSON metadata, shared by the server.

Each model is two files in the store's folder, NAME.keras and NAME.json, each written
to a temporary file first and then renamed, so a crash never leaves half a model
(temporary files left by a crash are removed when the server starts). A save never
replaces another model unless asked to. Names are checked so that no name can reach
outside the folder. Listing the store checks each model cheaply (the metadata, and
the archive's layer list: no code-carrying layers) and says why a model is unusable;
loading uses Keras' safe mode and checks that the model takes 28x28 images and gives
10 class probabilities.
"""

from __future__ import annotations

import datetime as _datetime
import functools
import json
import os
import re
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mnistlab import jsonfiles
from mnistlab.datasets import DATASETS, NORMALIZATIONS, OWN_IMAGES
from mnistlab.i18n import N_, _, percent
from mnistlab.image_sets import MAX_CATEGORIES

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}")
# A .keras archive is refused when its members would unpack to more than this (a "zip bomb" costs every page
# that lists it memory and time): config.json holds the layer list, the weights file the numbers.
MAX_CONFIG_BYTES = 2 * 1024 * 1024
MAX_ARCHIVE_BYTES = 300 * 1024 * 1024
# Temporary files older than this are leftovers of an interrupted save.
STALE_TEMPORARY_SECONDS = 600
# Layers whose configuration carries Python code, or that load files: never in a shared model.
FORBIDDEN_LAYERS = {"Lambda", "TFSMLayer"}
ALLOWED_CUSTOM = {"mnistlab>FusedBatchNormalization"}


class ModelExistsError(ValueError):
    """A model with this name is already in the store (save with overwrite=True to replace it)."""


def check_name(name: str) -> str:
    """Return a clean model name, or raise ValueError saying what is allowed."""
    cleaned = name.strip() if isinstance(name, str) else ""
    if cleaned.endswith(".keras"):
        cleaned = cleaned[: -len(".keras")]
    if not cleaned:
        raise ValueError(_("Give the model a name."))
    if "/" in cleaned or "\\" in cleaned or ".." in cleaned or not _NAME.fullmatch(cleaned):
        raise ValueError(
            _(
                "{name} is not a valid model name: use letters, digits, spaces, '-', '_' or '.', "
                "start with a letter or digit, at most 64 characters, and no '..' or slashes."
            ).format(name=repr(name))
        )
    return cleaned


def check_model_shape(model) -> None:
    """Raise ValueError unless the model takes 28x28 images and outputs a score per class (2 to 30 classes)."""
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1 or tuple(inputs[0].shape[1:]) != (28, 28):
        shapes = [tuple(tensor.shape) for tensor in inputs]
        raise ValueError(f"This model takes inputs of shape {shapes}; MNIST Lab needs models that take 28x28 images.")
    outputs = getattr(model, "outputs", None) or []
    shape = tuple(outputs[0].shape[1:]) if len(outputs) == 1 else ()
    if len(shape) != 1 or not 2 <= (shape[0] or 0) <= MAX_CATEGORIES:
        shapes = [tuple(tensor.shape) for tensor in outputs]
        raise ValueError(
            f"This model outputs shape {shapes}; MNIST Lab needs one score per class: 10 for the digits or the clothes, "
            f"2 to {MAX_CATEGORIES} for a set of your own."
        )


def _layer_configs(config):
    """Every layer configuration in a Keras model config, nested models included."""
    if isinstance(config, dict):
        if "class_name" in config and isinstance(config.get("config"), dict):
            yield config
        for value in config.values():
            yield from _layer_configs(value)
    elif isinstance(config, list):
        for value in config:
            yield from _layer_configs(value)


def archive_problem(path: str | os.PathLike) -> str | None:
    """Why a .keras file cannot be a shared model, from its archive alone (None when it looks fine).

    This reads config.json only: it is fast enough to run on every model of the store
    when a page lists them. Loading the model (safe mode) is the final check.
    """
    path = Path(path)
    if path.suffix != ".keras":
        return _("MNIST Lab loads Keras' .keras files only.")
    if not path.is_file():
        return _("The file is missing.")
    try:
        stat = path.stat()
        return _archive_problem(str(path), stat.st_mtime_ns, stat.st_size)
    except OSError as error:
        return _("The model's file cannot be read ({error}).").format(error=error.strerror or error)


@functools.lru_cache(maxsize=256)
def _archive_problem(path: str, modified_ns: int, size: int) -> str | None:
    """`archive_problem` for one version of a file (pages list the store often; a file is read once per change)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            names = {member.filename for member in members}
            if "config.json" not in names:
                return _("This is a zip archive but not a Keras model (it has no config.json).")
            if not any(name.endswith(".weights.h5") or name.endswith(".weights.npz") for name in names):
                return _("The archive has no weights.")
            config_size = next(member.file_size for member in members if member.filename == "config.json")
            total = sum(member.file_size for member in members)
            if config_size > MAX_CONFIG_BYTES or total > MAX_ARCHIVE_BYTES:
                return _(
                    "It would unpack to {size} MB (its description alone to {config} MB): far more than a model of this app, so it is not opened."
                ).format(size=total // (1024 * 1024), config=config_size // (1024 * 1024))
            with archive.open("config.json") as member:
                config = jsonfiles.parse(member.read(MAX_CONFIG_BYTES + 1))
    except zipfile.BadZipFile:
        return _("The file is not a complete .keras archive: it is damaged or was cut off while being written.")
    except (OSError, ValueError, KeyError) as error:
        return _("The model's configuration cannot be read ({error}).").format(error=error)
    for layer in _layer_configs(config):
        kind, registered, module = layer.get("class_name"), layer.get("registered_name"), layer.get("module")
        if kind in FORBIDDEN_LAYERS:
            return _("It has a {kind} layer, which can carry code; MNIST Lab does not load such models.").format(kind=kind)
        if registered in ALLOWED_CUSTOM:
            continue
        if module is not None and not str(module).startswith("keras"):
            return _("It has a custom layer ({kind}) that this server does not know.").format(kind=registered or kind)
    return None


def load_model_file(path: str | os.PathLike):
    """Load a .keras file in safe mode and check its shape; any problem is a ValueError that says what is wrong."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: MNIST Lab loads Keras' .keras files only.")
    if not path.is_file():
        raise ValueError(f"{path}: no such model file.")
    problem = archive_problem(path)
    if problem:
        raise ValueError(f"{path}: {problem}")
    import keras  # after the checks: a wrong path is said at once, without the seconds TensorFlow takes to import

    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
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


# What each metadata field must be: a JSON type, or a check. Anything else is kept as it is.
_NUMBER_FIELDS = ("train_accuracy", "val_accuracy", "test_accuracy", "test_loss")
_WHOLE_FIELDS = ("parameters", "epochs_run")
_TEXT_FIELDS = ("arch", "name", "stop_reason", "data_source", "trained_on", "saved_at")


def metadata_problems(metadata) -> tuple[dict, str | None]:
    """Clean metadata and the reason it makes a model unusable (None when it is fine).

    Metadata is a JSON object; "dataset" must name a known dataset, "class_names" must be ten names (2 to 30 for a
    set of one's own images),
    "normalization" a known method, the accuracies and losses numbers, the counts whole numbers, the
    other descriptions text. A model with wrong metadata is listed as unusable, with the field that is wrong.
    """
    if not isinstance(metadata, dict):
        return {}, f"Its metadata is a JSON {type(metadata).__name__}, not an object."
    dataset = metadata.get("dataset")
    if dataset is not None and (not isinstance(dataset, str) or dataset not in (*DATASETS, OWN_IMAGES)):
        return metadata, f"Its metadata names an unknown dataset ({str(dataset)[:40]!r})."
    names = metadata.get("class_names")
    # A model of the class's own images names its categories (2 to 30); the digits' and clothes' models name ten.
    low, high = (2, MAX_CATEGORIES) if dataset == OWN_IMAGES else (10, 10)
    if (dataset == OWN_IMAGES and names is None) or (
        names is not None and (not isinstance(names, list) or not low <= len(names) <= high or not all(isinstance(name, str) for name in names))
    ):
        count = len(names) if isinstance(names, list) else "no list of"
        needs = f"{low} to {high}" if low != high else str(low)
        return metadata, f"Its metadata has {count} class names; a model here needs {needs}."
    normalization = metadata.get("normalization")
    if normalization is not None and (not isinstance(normalization, str) or normalization not in NORMALIZATIONS):
        return metadata, f"Its metadata names an unknown normalisation ({str(normalization)[:40]!r})."
    for key in _NUMBER_FIELDS:
        value = metadata.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return metadata, f"Its metadata's {key} is not a number ({str(value)[:40]!r})."
    for key in _WHOLE_FIELDS:
        value = metadata.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return metadata, f"Its metadata's {key} is not a whole number ({str(value)[:40]!r})."
    for key in _TEXT_FIELDS:
        value = metadata.get(key)
        if value is not None and not isinstance(value, str):
            return metadata, f"Its metadata's {key} is not text ({str(value)[:40]!r})."
    return metadata, None


MISSING_METADATA = N_(
    "Its description file ({name}.json, what it was trained on) is missing: the save was cut off. Save the model again from its run, or delete it."
)


def read_metadata(metadata_path: Path, required: bool = False) -> tuple[dict, str | None]:
    """The metadata next to a model and the reason it is unusable, if any. Without a metadata file: empty metadata,
    and, when `required` (a model of the store), the reason that makes it unusable."""
    if not metadata_path.is_file():
        return {}, (_(MISSING_METADATA).format(name=metadata_path.stem) if required else None)
    try:
        metadata = jsonfiles.parse(metadata_path.read_text())
    except (OSError, ValueError) as error:
        return {}, f"Its metadata file cannot be read ({error})."
    return metadata_problems(metadata)


@dataclass(frozen=True)
class StoredModel:
    """A model in the store: its name, file, metadata, and why it cannot be used (None when it can)."""

    name: str
    path: Path
    metadata: dict
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.problem is None

    @property
    def _checked(self) -> dict:
        """The metadata when it is valid, else nothing of it (a wrong field is never half used)."""
        return self.metadata if self.problem is None else {}

    @property
    def dataset(self) -> str | None:
        return self._checked.get("dataset")

    @property
    def class_names(self) -> tuple[str, ...]:
        names = self._checked.get("class_names")
        if names:
            return tuple(names)
        return DATASETS[self.dataset].class_names if self.dataset in DATASETS else tuple(str(digit) for digit in range(10))

    @property
    def normalization(self) -> str:
        return self._checked.get("normalization", "divide_255")

    def describe(self) -> str:
        """The model in a list: its name, what it was trained on, its test accuracy."""
        from mnistlab.models import PRESETS

        metadata = self._checked
        accuracy = metadata.get("test_accuracy")
        parts = []
        if metadata.get("dataset") in DATASETS:
            parts.append(_(DATASETS[metadata["dataset"]].title))
        elif metadata.get("dataset") == OWN_IMAGES:
            parts.append(_("your own images: {categories}").format(categories=", ".join(self.class_names)))
        if metadata.get("arch") in PRESETS:
            parts.append(_(PRESETS[metadata["arch"]].title))
        if isinstance(accuracy, (int, float)) and not isinstance(accuracy, bool):
            parts.append(_("test accuracy {accuracy}").format(accuracy=percent(accuracy)))
        return f"{self.name} ({', '.join(parts)})" if parts else self.name


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

    def check_writable(self) -> None:
        """Raise ValueError now if models cannot be written here (before a long training, not after it)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".tmp-check-"):
                pass
        except OSError as error:
            raise ValueError(f"Models cannot be saved in {self.root}: {error.strerror or error}.") from None

    def exists(self, name: str) -> bool:
        return self._paths(name)[0].exists()

    def save(self, name: str, model, metadata: dict, overwrite: bool = False) -> StoredModel:
        """Save a model and its metadata (plain Keras layers only, so the file loads anywhere).

        An existing model of the same name is replaced only with overwrite=True; otherwise
        ModelExistsError (a ValueError) says so.
        """
        from mnistlab.layers import portable_model

        check_model_shape(model)
        model_path, metadata_path = self._paths(name)
        if model_path.exists() and not overwrite:
            raise ModelExistsError(_("There is already a model called {name}; choose another name or replace it.").format(name=repr(model_path.stem)))
        self.check_writable()
        model = portable_model(model)
        metadata = dict(metadata, name=model_path.stem, saved_at=_datetime.datetime.now(_datetime.UTC).isoformat(timespec="seconds"))
        # The description first, then the model: a save cut off in between leaves a description without a model,
        # which nobody lists, never a model without its description.
        _atomic_replace(metadata_path, lambda path: path.write_text(json.dumps(metadata, indent=2, default=str)))
        _atomic_replace(model_path, model.save)
        return StoredModel(model_path.stem, model_path, metadata)

    def save_file(self, name: str, model_file: Path, metadata: dict, overwrite: bool = False) -> StoredModel:
        """Save a .keras file that already holds plain Keras layers (a run's model) under `name`."""
        model_path, metadata_path = self._paths(name)
        if model_path.exists() and not overwrite:
            raise ModelExistsError(_("There is already a model called {name}; choose another name or replace it.").format(name=repr(model_path.stem)))
        self.check_writable()
        data = Path(model_file).read_bytes()
        metadata = dict(metadata, name=model_path.stem, saved_at=_datetime.datetime.now(_datetime.UTC).isoformat(timespec="seconds"))
        _atomic_replace(metadata_path, lambda path: path.write_text(json.dumps(metadata, indent=2, default=str)))
        _atomic_replace(model_path, lambda path: path.write_bytes(data))
        return StoredModel(model_path.stem, model_path, metadata)

    def list(self) -> list[StoredModel]:
        """The saved models, newest first, each with the reason it cannot be used (if any)."""
        if not self.root.is_dir():
            return []
        models = []
        for model_path in self.root.glob("*.keras"):
            if model_path.name.startswith("."):
                continue
            try:
                modified = model_path.stat().st_mtime
            except OSError:
                continue
            metadata, problem = read_metadata(model_path.with_suffix(".json"), required=True)
            problem = problem or archive_problem(model_path)
            models.append((modified, StoredModel(model_path.stem, model_path, metadata, problem)))
        return [stored for _age, stored in sorted(models, key=lambda item: item[0], reverse=True)]

    def get(self, name: str) -> StoredModel:
        model_path, metadata_path = self._paths(name)
        if not model_path.is_file():
            raise ValueError(f"No saved model called {name!r} in {self.root}.")
        metadata, problem = read_metadata(metadata_path, required=True)
        return StoredModel(model_path.stem, model_path, metadata, problem or archive_problem(model_path))

    def load(self, name: str):
        """Load a saved model (safe mode, shape checked); returns (model, StoredModel)."""
        stored = self.get(name)
        if stored.problem:
            raise ValueError(f"{stored.name}: {stored.problem}")
        return load_model_file(stored.path), stored

    def delete(self, name: str) -> None:
        model_path, metadata_path = self._paths(name)
        model_path.unlink(missing_ok=True)
        metadata_path.unlink(missing_ok=True)

    def remove_stale_temporary_files(self, older_than: float = STALE_TEMPORARY_SECONDS) -> list[Path]:
        """Remove `.tmp-*` files that an interrupted save left behind; returns what was removed."""
        removed = []
        if not self.root.is_dir():
            return removed
        limit = time.time() - older_than
        for path in self.root.glob(".tmp-*"):
            try:
                if path.is_file() and path.stat().st_mtime < limit:
                    path.unlink()
                    removed.append(path)
            except OSError:
                continue
        return removed


def metadata_for(trained) -> dict:
    """The metadata saved next to a model trained by the engine (a TrainedModel, or a run's snapshot)."""
    result = trained.result
    return metadata_for_result(result, trained.class_names)


def metadata_for_result(result, class_names) -> dict:
    return {
        "dataset": result.dataset,
        "arch": result.arch,
        "class_names": list(class_names),
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
