import pytest

from mnistlab.models import PRESETS, ConvBlock, ModelConfig, build_model, get_preset, model_summary


def _shapes(model):
    return {row.name: row.output_shape for row in model_summary(model)}


def test_classic_dense_is_the_lesson_model():
    model = build_model(get_preset("dense").config)
    kinds = [row.kind for row in model_summary(model)]
    assert kinds == ["InputLayer", "Flatten", "Dense", "Dense"]
    assert _shapes(model)["dense_1"] == "(batch, 128)"
    # 784*128 + 128 + 128*10 + 10 parameters.
    assert model.count_params() == 101_770


def test_classic_cnn_shapes():
    shapes = _shapes(build_model(get_preset("cnn").config))
    assert shapes["conv_1"] == "(batch, 26, 26, 32)"
    assert shapes["max_pooling_1"] == "(batch, 13, 13, 32)"
    assert shapes["conv_2"] == "(batch, 11, 11, 64)"
    assert shapes["max_pooling_2"] == "(batch, 5, 5, 64)"
    assert shapes["probabilities"] == "(batch, 10)"


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_every_preset_takes_28x28_and_gives_10_probabilities(name, dataset):
    import numpy as np

    model = build_model(PRESETS[name].config_for(dataset))
    assert tuple(model.inputs[0].shape) == (None, 28, 28)
    output = np.asarray(model(np.zeros((2, 28, 28), "float32"), training=False))
    assert output.shape == (2, 10)
    np.testing.assert_allclose(output.sum(axis=1), 1.0, rtol=1e-5)
    assert PRESETS[name].explanation


def test_augmentation_only_where_it_helps():
    assert get_preset("fast_cnn").config_for("mnist").augmentation
    assert not get_preset("fast_cnn").config_for("fashion_mnist").augmentation
    assert not get_preset("cnn").config_for("mnist").augmentation
    # Mirroring is never a preset's (a mirrored 2 is not a 2, and eight epochs of clothes did not gain from it).
    assert not any(preset.config_for(dataset).mirror for preset in PRESETS.values() for dataset in ("mnist", "fashion_mnist"))


def test_mirror_layer_flips_in_training_only():
    import numpy as np

    model = build_model(ModelConfig(mirror=True), seed=0)
    mirror = model.get_layer("random_mirror")
    image = np.zeros((1, 28, 28, 1), "float32")
    image[0, :, :5] = 1.0
    np.testing.assert_array_equal(np.asarray(mirror(image, training=False)), image)
    # Over a batch of copies, training flips some and keeps others, and only left-right.
    flipped = np.asarray(mirror(np.repeat(image, 64, axis=0), training=True))
    mirrored = image[:, :, ::-1]
    is_mirrored = [np.array_equal(one, mirrored[0]) for one in flipped]
    is_same = [np.array_equal(one, image[0]) for one in flipped]
    assert all(m or s for m, s in zip(is_mirrored, is_same)) and any(is_mirrored) and any(is_same)


def test_custom_config_with_batch_norm_and_dropout():
    config = ModelConfig(conv_blocks=(ConvBlock(8, 5), ConvBlock(16, 3, pool=False)), dense_units=(32, 16), dropout=0.2, batch_norm=True)
    shapes = _shapes(build_model(config))
    assert shapes["conv_1"] == "(batch, 24, 24, 8)"
    assert shapes["conv_2"] == "(batch, 10, 10, 16)"
    assert "batch_norm_1" in shapes and "dropout_2" in shapes


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ConvBlock(filters=0), "1 to 512 filters"),
        (lambda: ConvBlock(kernel_size=4), "A kernel is 1, 3, 5 or 7 pixels wide"),
        (lambda: ModelConfig(dropout=1.0), "Dropout"),
        (lambda: ModelConfig(activation="swishy"), "The activation is one of"),
        (lambda: ModelConfig(dense_units=(0,)), "1 to 4096 units"),
        (lambda: ModelConfig(conv_blocks=(ConvBlock(8, 7),) * 3), "shrink the 28x28 image to nothing"),
        (lambda: get_preset("resnet"), "Unknown architecture 'resnet'"),
    ],
)
def test_bad_configs_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()
