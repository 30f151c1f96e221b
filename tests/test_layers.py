"""The fused batch normalisation computes what Keras' layer computes, and saved models stay plain Keras."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from mnistlab.layers import FusedBatchNormalization, portable_model  # noqa: E402
from mnistlab.models import PRESETS, build_model  # noqa: E402
from mnistlab.store import ModelStore, model_to_bytes  # noqa: E402


def _pair(shape, seed=0):
    """A Keras BatchNormalization and a fused one with the same random scale and shift."""
    rng = np.random.default_rng(seed)
    gamma = rng.normal(1.0, 0.2, shape[-1]).astype("float32")
    beta = rng.normal(0.0, 0.2, shape[-1]).astype("float32")
    layers = (keras.layers.BatchNormalization(), FusedBatchNormalization())
    for layer in layers:
        layer.build(shape)
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
    return layers


def _train_step(layer, inputs):
    """Outputs, gradients (inputs, gamma, beta) and moving statistics after one training call."""
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs, training=True)
        # A loss that weights every output differently, so wrong gradients show.
        loss = tf.reduce_sum(outputs * tf.sin(inputs))
    gradients = tape.gradient(loss, [inputs, layer.gamma, layer.beta])
    return [np.asarray(outputs), *[np.asarray(gradient) for gradient in gradients], np.asarray(layer.moving_mean), np.asarray(layer.moving_variance)]


@pytest.mark.parametrize("shape", [(8, 5, 5, 4), (16, 26, 26, 32)])
def test_training_matches_keras_batch_normalization(shape):
    inputs = tf.constant(np.random.default_rng(1).normal(2.0, 3.0, shape).astype("float32"))
    plain, fused = _pair(shape)
    expected, actual = _train_step(plain, inputs), _train_step(fused, inputs)
    names = ["outputs", "input gradient", "gamma gradient", "beta gradient", "moving mean", "moving variance"]
    for name, want, got in zip(names, expected, actual):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5, err_msg=name)
    # The moving statistics really moved (so the comparison above means something).
    assert not np.allclose(actual[-2], 0.0) and not np.allclose(actual[-1], 1.0)


def test_training_uses_the_fused_kernel_and_inference_does_not_change():
    shape = (4, 6, 6, 3)
    plain, fused = _pair(shape)
    spec = tf.TensorSpec(shape, tf.float32)
    graph = tf.function(lambda images: fused(images, training=True)).get_concrete_function(spec).graph
    assert "FusedBatchNormV3" in {operation.type for operation in graph.get_operations()}
    inputs = np.random.default_rng(2).normal(size=shape).astype("float32")
    np.testing.assert_allclose(np.asarray(fused(inputs, training=False)), np.asarray(plain(inputs, training=False)), rtol=1e-6)


def test_other_shapes_fall_back_to_keras():
    # A batch of vectors (after a Dense layer) is not what the fused kernel takes.
    inputs = tf.constant(np.random.default_rng(3).normal(size=(32, 7)).astype("float32"))
    plain, fused = _pair((32, 7))
    for want, got in zip(_train_step(plain, inputs), _train_step(fused, inputs)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_presets_with_batch_norm_use_the_fused_layer():
    for name in ("fast_cnn", "accurate_cnn"):
        model = build_model(PRESETS[name].config_for("fashion_mnist"))
        kinds = [type(layer) for layer in model.layers]
        assert FusedBatchNormalization in kinds and keras.layers.BatchNormalization not in kinds


def test_portable_model_has_plain_layers_and_the_same_predictions():
    model = build_model(PRESETS["accurate_cnn"].config_for("mnist"), seed=0)
    # Train one step so the moving statistics are not the initial ones.
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    images = np.random.default_rng(4).random((64, 28, 28)).astype("float32")
    model.fit(images, np.arange(64) % 10, epochs=1, verbose=0)
    copy = portable_model(model)
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in copy.layers)
    assert [layer.name for layer in copy.layers] == [layer.name for layer in model.layers]
    np.testing.assert_allclose(np.asarray(copy(images, training=False)), np.asarray(model(images, training=False)), atol=1e-6)
    dense = build_model(PRESETS["dense"].config)
    assert portable_model(dense) is dense


@pytest.mark.slow
def test_saved_files_load_in_plain_keras(tmp_path):
    """A download or a stored model must load where MNIST Lab is not installed."""
    model = build_model(PRESETS["fast_cnn"].config_for("fashion_mnist"), seed=0)
    stored = ModelStore(tmp_path / "store").save("fashion", model, {"dataset": "fashion_mnist"})
    downloaded = tmp_path / "download.keras"
    downloaded.write_bytes(model_to_bytes(model))
    for path in (stored.path, downloaded):
        with zipfile.ZipFile(path) as archive:
            assert "mnistlab" not in json.dumps(json.loads(archive.read("config.json")))
    # A fresh interpreter that never imports mnistlab loads both files.
    script = "import sys, keras\nfor path in sys.argv[1:]:\n    print(keras.models.load_model(path).output_shape)"
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", script, str(stored.path), str(downloaded)], cwd=tmp_path, capture_output=True, text=True, env=environment, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:2] == ["(None, 10)", "(None, 10)"]
