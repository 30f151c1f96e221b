import numpy as np
import pytest

from mnistlab.convolutions import KERNELS, FeatureExtractor, convolve, follow_filter, learned_filters, max_pool, playground
from mnistlab.models import PRESETS, ModelConfig, build_model
from mnistlab.pictures import maps_grid, tile, to_diverging, to_grey


@pytest.mark.parametrize("name", list(KERNELS))
def test_playground_convolution_equals_keras_conv2d(name):
    import keras

    image = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    kernel = KERNELS[name].array
    inputs = keras.Input(shape=(28, 28, 1))
    layer = keras.layers.Conv2D(1, 3, use_bias=False)
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([kernel[:, :, None, None]])
    expected = np.asarray(model(image[None, :, :, None]))[0, :, :, 0]
    np.testing.assert_allclose(convolve(image, kernel), expected, rtol=1e-5, atol=1e-5)


def test_playground_pooling_matches_keras_and_shapes():
    import keras

    image = np.random.default_rng(1).random((28, 28)).astype(np.float32)
    result = playground(image, KERNELS["edge"].array, use_relu=True)
    assert result.convolved.shape == (26, 26) and result.pooled.shape == (13, 13)
    assert result.activated.min() >= 0
    pooled = np.asarray(keras.layers.MaxPooling2D(2)(result.activated[None, :, :, None]))[0, :, :, 0]
    np.testing.assert_allclose(result.pooled, pooled)
    no_relu = playground(image, KERNELS["edge"].array, use_relu=False)
    assert no_relu.activated.min() < 0


def test_edge_kernel_is_zero_on_flat_areas():
    flat = np.full((28, 28), 0.5, np.float32)
    np.testing.assert_allclose(convolve(flat, KERNELS["edge"].array), 0.0, atol=1e-6)


def test_pooling_halves_and_keeps_the_maximum():
    values = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_array_equal(max_pool(values), [[5, 7], [13, 15]])
    assert max_pool(np.zeros((13, 13))).shape == (6, 6)


def test_bad_kernels():
    with pytest.raises(ValueError, match="odd size"):
        convolve(np.zeros((28, 28)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="must be a number"):
        convolve(np.zeros((28, 28)), np.full((3, 3), np.nan))


EXPECTED_STAGES = {
    "cnn": [
        ("conv_1", "26x26x32"),
        ("conv_1", "26x26x32"),
        ("max_pooling_1", "13x13x32"),
        ("conv_2", "11x11x64"),
        ("conv_2", "11x11x64"),
        ("max_pooling_2", "5x5x64"),
    ],
    "fast_cnn": [
        ("conv_1", "26x26x32"),
        ("batch_norm_1", "26x26x32"),
        ("relu_1", "26x26x32"),
        ("max_pooling_1", "13x13x32"),
        ("conv_2", "11x11x64"),
        ("batch_norm_2", "11x11x64"),
        ("relu_2", "11x11x64"),
        ("max_pooling_2", "5x5x64"),
    ],
    "accurate_cnn": [
        ("conv_1", "28x28x32"),
        ("batch_norm_1", "28x28x32"),
        ("relu_1", "28x28x32"),
        ("max_pooling_1", "14x14x32"),
        ("conv_2", "14x14x64"),
        ("batch_norm_2", "14x14x64"),
        ("relu_2", "14x14x64"),
        ("max_pooling_2", "7x7x64"),
        ("conv_3", "7x7x128"),
        ("batch_norm_3", "7x7x128"),
        ("relu_3", "7x7x128"),
        ("max_pooling_3", "3x3x128"),
    ],
}


@pytest.mark.parametrize("name", list(EXPECTED_STAGES))
def test_feature_map_shapes_for_each_cnn_preset(name):
    model = build_model(PRESETS[name].config_for("mnist"))
    stages = FeatureExtractor(model).stages(np.random.default_rng(2).random((28, 28)).astype(np.float32))
    assert [(stage.layer, stage.shape_text) for stage in stages] == EXPECTED_STAGES[name]


def test_pre_activation_map_is_the_convolution_and_relu_follows():
    model = build_model(PRESETS["cnn"].config_for("mnist"), seed=3)
    image = np.random.default_rng(3).random((28, 28)).astype(np.float32)
    stages = FeatureExtractor(model).stages(image)
    conv = model.get_layer("conv_1")
    kernel, bias = (np.asarray(weight) for weight in conv.get_weights())
    by_hand = convolve(image, kernel[:, :, 0, 5]) + bias[5]
    np.testing.assert_allclose(stages[0].maps[:, :, 5], by_hand, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stages[1].maps, np.maximum(stages[0].maps, 0), rtol=1e-5, atol=1e-6)
    followed = follow_filter(stages, "conv_1")
    assert [stage.kind for stage in followed] == ["convolution", "activation", "pooling"]
    assert learned_filters(model, "conv_2").shape == (3, 3, 64)


def test_dense_models_have_no_feature_maps():
    with pytest.raises(ValueError, match="no convolution"):
        FeatureExtractor(build_model(ModelConfig()))


def test_pictures():
    assert to_grey(np.array([[0.0, 0.5, 1.0]])).tolist() == [[0, 128, 255]]
    assert to_grey(np.zeros((2, 2))).max() == 0
    assert to_grey(np.full((2, 2), 0.01)).min() == 255  # Anchored at zero, not stretched.
    colours = to_diverging(np.array([[-1.0, 0.0, 1.0]]))[0]
    assert colours.tolist() == [[0, 0, 255], [255, 255, 255], [255, 0, 0]]
    grid = tile(np.full((5, 2, 2), 9, np.uint8), columns=3, gap=1, background=0)
    assert grid.shape == (5, 8) and grid[0, 2] == 0 and grid[0, 0] == 9
    assert maps_grid(np.random.random((26, 26, 32)), columns=8, scale=2).shape == (4 * 52 + 3 * 2, 8 * 52 + 7 * 2)
