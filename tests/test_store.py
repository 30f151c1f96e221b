import json

import numpy as np
import pytest

from mnistlab.models import ModelConfig, build_model
from mnistlab.store import ModelStore, check_name, load_model_file, model_to_bytes


@pytest.fixture(scope="module")
def small_model():
    return build_model(ModelConfig(dense_units=(8,)))


def test_round_trip(tmp_path, small_model):
    store = ModelStore(tmp_path / "models")
    stored = store.save("my digits", small_model, {"dataset": "mnist", "arch": "dense", "test_accuracy": 0.9, "class_names": list("0123456789")})
    assert stored.path == (tmp_path / "models" / "my digits.keras").resolve()
    assert [entry.name for entry in store.list()] == ["my digits"]
    model, entry = store.load("my digits")
    assert entry.metadata["dataset"] == "mnist" and "saved_at" in entry.metadata
    images = np.random.default_rng(0).random((3, 28, 28)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(images)), np.asarray(small_model(images)), rtol=1e-6)
    assert json.loads((tmp_path / "models" / "my digits.json").read_text())["test_accuracy"] == 0.9
    # Writes are atomic: no temporary file is left behind.
    assert sorted(path.name for path in (tmp_path / "models").iterdir()) == ["my digits.json", "my digits.keras"]
    assert "test accuracy 90.0%" in entry.describe()


@pytest.mark.parametrize("name", ["../evil", "..", "a/b", "a\\b", "/etc/passwd", ".hidden", "", "   ", "x" * 80, "name\x00"])
def test_names_that_could_escape_are_refused(tmp_path, small_model, name):
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ValueError):
        store.save(name, small_model, {})
    assert not (tmp_path / "evil.keras").exists()


def test_name_cleaning():
    assert check_name("  fashion-cnn.keras ") == "fashion-cnn"


def test_load_refuses_a_model_with_the_wrong_shape(tmp_path):
    import keras

    inputs = keras.Input(shape=(28, 28))
    outputs = keras.layers.Dense(5, activation="softmax")(keras.layers.Flatten()(inputs))
    path = tmp_path / "five.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ValueError, match="10 class scores"):
        load_model_file(path)


def test_safe_mode_refuses_code_in_a_model_file(tmp_path):
    import keras

    inputs = keras.Input(shape=(28, 28))
    flat = keras.layers.Flatten()(inputs)
    scaled = keras.layers.Lambda(lambda x: x * 2.0)(flat)
    outputs = keras.layers.Dense(10, activation="softmax")(scaled)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ValueError, match="cannot be loaded"):
        load_model_file(path)


def test_not_a_model_file(tmp_path):
    path = tmp_path / "junk.keras"
    path.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot be loaded"):
        load_model_file(path)
    with pytest.raises(ValueError, match=".keras files only"):
        load_model_file(tmp_path / "model.h5")


def test_model_to_bytes_is_a_loadable_keras_file(tmp_path, small_model):
    data = model_to_bytes(small_model)
    (tmp_path / "download.keras").write_bytes(data)
    assert load_model_file(tmp_path / "download.keras").count_params() == small_model.count_params()


def test_unknown_model(tmp_path):
    with pytest.raises(ValueError, match="No saved model called 'ghost'"):
        ModelStore(tmp_path).load("ghost")
