import struct

import numpy as np
import pytest

from mnistlab.idx import read_idx, write_idx


@pytest.mark.parametrize("name", ["images.idx", "images.idx.gz"])
def test_round_trip(tmp_path, name):
    images = np.random.default_rng(1).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / name, images)
    np.testing.assert_array_equal(read_idx(tmp_path / name, expected_dims=3), images)


def test_labels_round_trip(tmp_path):
    labels = np.array([7, 2, 1, 0, 4], dtype=np.uint8)
    write_idx(tmp_path / "labels.gz", labels)
    np.testing.assert_array_equal(read_idx(tmp_path / "labels.gz", expected_dims=1), labels)


def test_truncated_file_names_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((5, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*truncated"):
        read_idx(path, expected_dims=3)


def test_truncated_gzip_is_reported(tmp_path):
    path = tmp_path / "images.gz"
    write_idx(path, np.random.default_rng(2).integers(0, 256, size=(50, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="images.gz"):
        read_idx(path)


def test_wrong_magic(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match="magic"):
        read_idx(path)


def test_wrong_type_code(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00\x00\x00\x00")
    with pytest.raises(ValueError, match="type code"):
        read_idx(path)


def test_wrong_count(tmp_path):
    path = tmp_path / "labels"
    # The header announces 5 labels but only 4 follow.
    path.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 5) + bytes([1, 2, 3, 4]))
    with pytest.raises(ValueError, match="announces 5 items"):
        read_idx(path, expected_dims=1)


def test_wrong_dimensions(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="expected 3 dimension"):
        read_idx(path, expected_dims=3)


def test_wrong_image_size(tmp_path):
    path = tmp_path / "images"
    write_idx(path, np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="32x32"):
        read_idx(path, expected_dims=3)


def test_published_file_with_wrong_content_is_rejected(tmp_path):
    # A file with the published name and count claims to be the published file.
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    write_idx(path, np.zeros(10_000, np.uint8))
    with pytest.raises(ValueError, match="does not match the published fashion_mnist file"):
        read_idx(path, expected_dims=1, dataset="fashion_mnist")
    # The same content is accepted when no dataset checksum applies.
    assert read_idx(path, expected_dims=1).shape == (10_000,)


@pytest.mark.skipif(
    not __import__("os").path.exists("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_published_file_passes_its_checksum():
    labels = read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", 1, dataset="fashion_mnist")
    assert labels.shape == (10_000,)
    assert np.bincount(labels).tolist() == [1000] * 10


def test_not_gzip_but_named_gz(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(b"this is not gzip at all")
    with pytest.raises(ValueError, match="labels.gz"):
        read_idx(path)
