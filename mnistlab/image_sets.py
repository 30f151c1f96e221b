"""Images of the class's own: a folder or a zip with one sub-folder per category, read into 28x28 inputs.

The layout is the one `keras.utils.image_dataset_from_directory` reads (`cats/1.png`,
`dogs/pic.jpg`, ...; a zip may wrap it in one top folder), so a set made here loads the
same way at home. Every image, PNG or JPEG of any size or colour, dark-on-light or
light-on-dark, goes through the drawings' own preprocessing (`mnistlab.preprocessing`):
ink bright on black, cropped, fitted into 20x20, centred in 28x28.

A set is read, never unpacked: a zip's members are read in memory, up to the size its
directory declares, and nothing is written anywhere. What cannot be used is skipped and
counted ("skipped 3 files that are not images"): files that are not PNG or JPEG or are
broken, archives inside the archive, paths that leave the folder (`../x.png`, `/etc/x`,
a link pointing out), files outside a category folder, images with nothing drawn.
What makes the whole set unusable is refused with a `ValueError` saying what to change:
more than `MAX_IMAGES` images or `MAX_BYTES` bytes (a zip bomb declares its real size, or
is cut there), more than `MAX_CATEGORIES` categories, fewer than two, or a category with
fewer than `MIN_PER_CATEGORY` images.
"""

from __future__ import annotations

import io
import os
import stat
import unicodedata
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from mnistlab.datasets import OWN_IMAGES, Dataset, DatasetInfo, DataSource
from mnistlab.i18n import N_, _, ngettext, number
from mnistlab.preprocessing import load_image_bytes, preprocess

MAX_IMAGES = 10_000
MAX_BYTES = 50 * 1024 * 1024
MAX_CATEGORIES = 30
MIN_PER_CATEGORY = 2
MAX_FILES = 2 * MAX_IMAGES  # files of any kind: a set may hold some that are not images, not a million
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
ARCHIVE_SUFFIXES = frozenset({".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".whl", ".jar"})
# Files an operating system adds to folders and zips; not the class's, so not counted as skipped.
SYSTEM_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", "__MACOSX"})

# Why a file was skipped; each reason is said to the class with its count.
NOT_AN_IMAGE, ARCHIVE, OUTSIDE, LOOSE, EMPTY = "not_an_image", "archive", "outside", "loose", "empty"


def skipped_sentence(reason: str, count: int) -> str:
    """ "skipped 3 files that are not images", in the page's language."""
    sentences = {
        NOT_AN_IMAGE: ngettext(
            "skipped {count} file that is not a PNG or JPEG image (or is broken)",
            "skipped {count} files that are not PNG or JPEG images (or are broken)",
            count,
        ),
        ARCHIVE: ngettext("skipped {count} archive inside the set", "skipped {count} archives inside the set", count),
        OUTSIDE: ngettext(
            "skipped {count} file whose path leaves the set's folder", "skipped {count} files whose paths leave the set's folder", count
        ),
        LOOSE: ngettext(
            "skipped {count} file that is not inside a category folder", "skipped {count} files that are not inside a category folder", count
        ),
        EMPTY: ngettext("skipped {count} image with nothing drawn on it", "skipped {count} images with nothing drawn on them", count),
    }
    return sentences[reason].format(count=count)


@dataclass(frozen=True, eq=False)
class ImageSet:
    """A set's 28x28 inputs (uint8, ink bright), their category numbers, the categories' names, what was skipped."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    skipped: tuple[tuple[str, int], ...] = ()

    def counts(self) -> dict[str, int]:
        """Images per category, in the categories' order."""
        found = Counter(int(label) for label in self.labels)
        return {name: found[index] for index, name in enumerate(self.class_names)}

    def skipped_sentences(self) -> list[str]:
        return [skipped_sentence(reason, count) for reason, count in self.skipped]


@dataclass(frozen=True)
class _File:
    """A file of a set: its path inside the set (a PurePosixPath) and how to read it."""

    path: PurePosixPath
    read: Callable[[], bytes]


def category_name(folder: str) -> str:
    """A folder's name as a category's: the same letters however the computer spelled them (NFC), no outer spaces."""
    return unicodedata.normalize("NFC", folder).strip()


def _is_system(path: PurePosixPath) -> bool:
    return any(part in SYSTEM_NAMES or part.startswith("._") for part in path.parts)


def _leaves(path: PurePosixPath) -> bool:
    return path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0])


def _unwrapped(files: list[_File]) -> list[_File]:
    """A zip made from a folder holds that folder: `shapes/circle/1.png`. With one top folder and every file in it, the
    categories are one level down."""
    tops = {file.path.parts[0] for file in files if len(file.path.parts) > 1}
    if len(tops) == 1 and all(len(file.path.parts) > 2 and file.path.parts[0] in tops for file in files):
        return [_File(PurePosixPath(*file.path.parts[1:]), file.read) for file in files]
    return files


def _zip_files(source: bytes | Path) -> Iterator[_File | str]:
    """The zip's files (each read only up to the size its directory declares), or a skip reason for each member that
    cannot be one."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ValueError(_("This file is not a zip archive MNIST Lab can read.")) from None
    with archive:
        members = [member for member in archive.infolist() if not member.is_dir()]
        if len(members) > MAX_FILES:
            raise ValueError(too_many_files(len(members)))
        declared = sum(member.file_size for member in members)
        if declared > MAX_BYTES:
            raise ValueError(too_large(declared))
        for member in members:
            path = PurePosixPath(member.filename.replace("\\", "/"))
            if _is_system(path):
                continue
            if _leaves(path) or stat.S_ISLNK(member.external_attr >> 16):
                yield OUTSIDE
                continue

            try:
                with archive.open(member) as handle:  # stops at the declared size: a bomb that lies about it is cut there
                    data = handle.read(member.file_size + 1)[: member.file_size]
            except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, OSError, EOFError):
                yield NOT_AN_IMAGE  # broken, cut short, encrypted or compressed in a way Python cannot read
                continue
            yield _File(path, lambda data=data: data)


def _folder_files(folder: Path) -> Iterator[_File | str]:
    """The folder's files, recursively; a link that points outside the folder is skipped, never followed."""
    root = folder.resolve()
    total = files = 0
    for directory, subfolders, names in os.walk(root, followlinks=False):
        here = Path(directory)
        for name in list(subfolders):
            linked = here / name
            if linked.is_symlink():
                subfolders.remove(name)
                if not linked.resolve().is_relative_to(root):
                    yield OUTSIDE
        for name in names:
            file = here / name
            path = PurePosixPath(*file.relative_to(root).parts)
            if _is_system(path):
                continue
            resolved = file.resolve()
            if not resolved.is_relative_to(root) or not resolved.is_file():
                yield OUTSIDE
                continue
            size = resolved.stat().st_size
            total, files = total + size, files + 1
            if files > MAX_FILES:
                raise ValueError(too_many_files(files, at_least=True))
            if total > MAX_BYTES:
                raise ValueError(too_large(total, at_least=True))
            yield _File(path, resolved.read_bytes)


def too_many_files(count: int, at_least: bool = False) -> str:
    if at_least:
        text = _("The set has more than {count} files; a set can have at most {limit} images. Use fewer images.")
        count -= 1
    else:
        text = _("The set has {count} files; a set can have at most {limit} images. Use fewer images.")
    return text.format(count=number(count), limit=number(MAX_IMAGES))


def too_large(size: int, at_least: bool = False) -> str:
    if at_least:
        text = _("The set is more than {size} MB; a set can have at most {limit} MB. Use fewer or smaller images.")
    else:
        text = _("The set is {size} MB; a set can have at most {limit} MB. Use fewer or smaller images.")
    return text.format(size=number(size / (1024 * 1024)), limit=MAX_BYTES // (1024 * 1024))


def _read(files: Iterator[_File | str]) -> ImageSet:
    skipped: Counter[str] = Counter()
    usable: list[_File] = []
    for file in files:
        if isinstance(file, str):
            skipped[file] += 1
        else:
            usable.append(file)
    by_category: dict[str, list[_File]] = {}
    for file in _unwrapped(usable):
        suffix = file.path.suffix.lower()
        if suffix in ARCHIVE_SUFFIXES:
            skipped[ARCHIVE] += 1
        elif len(file.path.parts) < 2:
            skipped[LOOSE] += 1
        elif suffix not in IMAGE_SUFFIXES:
            skipped[NOT_AN_IMAGE] += 1
        else:
            by_category.setdefault(category_name(file.path.parts[0]), []).append(file)
    by_category = {name: files for name, files in by_category.items() if name}
    images_found = sum(len(files) for files in by_category.values())
    if images_found > MAX_IMAGES:
        raise ValueError(
            _("The set has {count} images; a set can have at most {limit}. Use fewer images.").format(
                count=number(images_found), limit=number(MAX_IMAGES)
            )
        )
    if len(by_category) > MAX_CATEGORIES:
        raise ValueError(_("The set has {count} categories; a set can have at most {limit}.").format(count=len(by_category), limit=MAX_CATEGORIES))
    class_names = tuple(sorted(by_category))  # Keras' order: image_dataset_from_directory sorts the folders' names
    images, labels = [], []
    for label, name in enumerate(class_names):
        for file in sorted(by_category[name], key=lambda file: str(file.path)):
            try:
                prepared = preprocess(load_image_bytes(file.read()))
            except ValueError:
                skipped[NOT_AN_IMAGE] += 1
                continue
            if prepared.is_empty:
                skipped[EMPTY] += 1
                continue
            images.append(np.round(prepared.image * 255).astype(np.uint8))
            labels.append(label)
    found = Counter(labels)
    if len(class_names) < 2:
        raise ValueError(
            _("The set needs at least 2 categories, each a folder of images; it has {count}.").format(count=len(class_names))
            if class_names
            else _("The set has no category folders with images in them. Put each category's images in a folder of its own.")
        )
    short = [name for index, name in enumerate(class_names) if found[index] < MIN_PER_CATEGORY]
    if short:
        raise ValueError(
            ngettext(
                "Each category needs at least {minimum} images that can be used; {names} has fewer.",
                "Each category needs at least {minimum} images that can be used; {names} have fewer.",
                len(short),
            ).format(minimum=MIN_PER_CATEGORY, names=", ".join(f"'{name}'" for name in short))
        )
    return ImageSet(
        np.stack(images),
        np.asarray(labels, dtype=np.uint8),
        class_names,
        tuple(sorted(skipped.items())),
    )


def read_image_zip(source: bytes | Path) -> ImageSet:
    """A zip of category folders (or of one folder holding them), as 28x28 inputs; nothing is unpacked to disk."""
    if isinstance(source, Path) and source.stat().st_size > MAX_BYTES:
        raise ValueError(too_large(source.stat().st_size))
    if isinstance(source, bytes) and len(source) > MAX_BYTES:
        raise ValueError(too_large(len(source)))
    return _read(_zip_files(source))


def read_image_folder(folder: Path) -> ImageSet:
    """A folder of category folders, as 28x28 inputs."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(_("{folder} is not a folder.").format(folder=folder))
    return _read(_folder_files(folder))


def read_image_set(source: Path) -> ImageSet:
    """A folder or a zip file of category folders."""
    source = Path(source)
    if source.is_dir():
        return read_image_folder(source)
    if not source.is_file():
        raise ValueError(_("{path} is neither a folder nor a zip file.").format(path=source))
    return read_image_zip(source)


TEST_SHARE = 0.2  # without test images of its own, this share of each category is held out to test on


def as_dataset(train: ImageSet, test: ImageSet | None = None, location: str = "", seed: int = 0) -> Dataset:
    """The dataset a training uses: `train`'s images, tested on `test`'s or, without them, on a fifth of each category
    held out (at least one image each, never seen in training)."""
    if test is not None and test.class_names != train.class_names:
        raise ValueError(
            _("The test images' categories ({test}) must be the training images' ({train}).").format(
                test=", ".join(test.class_names), train=", ".join(train.class_names)
            )
        )
    if test is None:
        generator = np.random.default_rng(seed)
        held = np.zeros(len(train.labels), dtype=bool)
        for label in range(len(train.class_names)):
            members = generator.permutation(np.flatnonzero(train.labels == label))
            held[members[: max(1, round(TEST_SHARE * len(members)))]] = True
        x_test, y_test = train.images[held], train.labels[held]
        x_train, y_train = train.images[~held], train.labels[~held]
    else:
        x_train, y_train, x_test, y_test = train.images, train.labels, test.images, test.labels
    info = DatasetInfo(
        name=OWN_IMAGES,
        title=N_("your own images"),
        description=N_("A set of your own: one folder of images per category."),
        class_names=train.class_names,
        keras_npz=None,
        keras_subdir=None,
        system_dirs=(),
        how_to_get="",
        suggested_target=0.9,
        published_train_size=len(y_train),
    )
    return Dataset(info, x_train, y_train, x_test, y_test, DataSource("images", location))
