"""Read and write the IDX files in which MNIST and Fashion-MNIST are published.

An IDX file starts with a magic number (two zero bytes, a type code, the number of
dimensions), then one big-endian 32-bit size per dimension, then the raw data. The
reader checks every part of that and raises a ValueError naming the file when
something is off, so a truncated download never turns into a silent bad dataset.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np

# Only unsigned bytes are used by the MNIST family; other IDX types are refused.
_UNSIGNED_BYTE = 0x08

# SHA-256 of the *decompressed* published files. Checking the decompressed bytes
# rather than the .gz keeps the check valid for re-compressed copies (Debian's
# dataset-fashion-mnist package re-compresses the files, for example).
# The MNIST test set hashes match the md5 published alongside the files
# (images: 2646ac647ad5339dbf082846283269ea); the Fashion-MNIST ones were
# computed from the files shipped by Debian.
KNOWN_SHA256 = {
    ("fashion_mnist", "train-images-idx3-ubyte"): "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ("fashion_mnist", "train-labels-idx1-ubyte"): "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ("fashion_mnist", "t10k-images-idx3-ubyte"): "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ("fashion_mnist", "t10k-labels-idx1-ubyte"): "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ("mnist", "t10k-images-idx3-ubyte"): "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ("mnist", "t10k-labels-idx1-ubyte"): "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# How many items the published files hold. A file with the published name and
# this count claims to be the published file, so its checksum must match.
PUBLISHED_COUNTS = {"train": 60_000, "t10k": 10_000}


def _read_bytes(path: Path) -> bytes:
    """Return the decompressed content of a .gz file, or the raw content otherwise."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{path}: cannot be read, the file looks truncated or corrupt ({error}).") from error


def read_idx(path: str | os.PathLike, expected_dims: int | None = None, dataset: str | None = None) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a uint8 numpy array.

    `expected_dims` is 1 for a label file and 3 for an image file. When `dataset`
    names a known dataset and the file is one of its published files, the content
    is checked against the published checksum.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: too short to be an IDX file ({len(data)} bytes).")
    zero_1, zero_2, type_code, dims = data[0], data[1], data[2], data[3]
    if zero_1 != 0 or zero_2 != 0:
        raise ValueError(f"{path}: wrong magic number {data[:4].hex()}; this is not an IDX file.")
    if type_code != _UNSIGNED_BYTE:
        raise ValueError(f"{path}: IDX type code 0x{type_code:02x} is not unsigned bytes (0x08).")
    if expected_dims is not None and dims != expected_dims:
        raise ValueError(f"{path}: expected {expected_dims} dimension(s) but the header says {dims}.")
    header_end = 4 + 4 * dims
    if len(data) < header_end:
        raise ValueError(f"{path}: the header is truncated.")
    shape = struct.unpack(f">{dims}I", data[4:header_end])
    if dims == 3 and shape[1:] != (28, 28):
        raise ValueError(f"{path}: images are {shape[1]}x{shape[2]}, expected 28x28.")
    expected_size = int(np.prod(shape, dtype=np.int64))
    actual_size = len(data) - header_end
    if actual_size != expected_size:
        raise ValueError(
            f"{path}: the header announces {shape[0]} items ({expected_size} bytes of data) "
            f"but the file holds {actual_size} bytes; it is truncated or corrupt."
        )
    if dataset is not None:
        _check_published_checksum(path, data, dataset, shape[0])
    return np.frombuffer(data, dtype=np.uint8, offset=header_end).reshape(shape).copy()


def _check_published_checksum(path: Path, data: bytes, dataset: str, count: int) -> None:
    """Compare a file that claims to be a published one with the published checksum."""
    stem = path.name.removesuffix(".gz")
    expected = KNOWN_SHA256.get((dataset, stem))
    published_count = PUBLISHED_COUNTS.get(stem.split("-")[0])
    if expected is None or count != published_count:
        return
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ValueError(
            f"{path}: content does not match the published {dataset} file (sha256 {actual[:12]}..., expected {expected[:12]}...). Download it again."
        )


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file, gzip-compressed when the name ends in .gz."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _UNSIGNED_BYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)
