"""What convolutions do: a kernel playground and a trained CNN's filters and feature maps.

The playground passes a 3x3 kernel over a 28x28 image exactly as a Keras Conv2D layer
with 'valid' padding does (a cross-correlation: the kernel is not flipped), giving
26x26, then applies ReLU if asked, then 2x2 max pooling, giving 13x13. It needs only
numpy and scipy. For a trained model, `FeatureExtractor` reads the output of every
convolution (before and after its activation), batch normalisation, activation and
pooling layer for one image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import correlate2d

from mnistlab.i18n import N_, _


@dataclass(frozen=True)
class Kernel:
    """A named 3x3 kernel with a plain-words description."""

    title: str
    weights: tuple[tuple[float, ...], ...]
    description: str

    @property
    def array(self) -> np.ndarray:
        return np.array(self.weights, dtype=np.float32)


KERNELS: dict[str, Kernel] = {
    "edge": Kernel(
        N_("Edge detection (8 in the middle, -1 around)"),
        ((-1, -1, -1), (-1, 8, -1), (-1, -1, -1)),
        N_("Zero where the image is flat, large where a pixel differs from its neighbours: it finds outlines."),
    ),
    "sobel_horizontal": Kernel(
        N_("Sobel, horizontal edges"),
        ((-1, -2, -1), (0, 0, 0), (1, 2, 1)),
        N_("Positive where the image gets brighter going down, negative where it gets darker: horizontal strokes."),
    ),
    "sobel_vertical": Kernel(
        N_("Sobel, vertical edges"),
        ((-1, 0, 1), (-2, 0, 2), (-1, 0, 1)),
        N_("Positive where the image gets brighter going right: vertical strokes."),
    ),
    "sharpen": Kernel(
        N_("Sharpen"),
        ((0, -1, 0), (-1, 5, -1), (0, -1, 0)),
        N_("Keeps the image and adds its edges on top: details stand out."),
    ),
    "blur": Kernel(
        N_("Blur (average of 3x3)"),
        ((1 / 9, 1 / 9, 1 / 9), (1 / 9, 1 / 9, 1 / 9), (1 / 9, 1 / 9, 1 / 9)),
        N_("Each pixel becomes the average of its neighbourhood: details fade."),
    ),
}


def check_kernel(kernel: np.ndarray) -> np.ndarray:
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise ValueError(f"A kernel is a square grid with an odd size (3x3, 5x5), got shape {kernel.shape}.")
    if not np.all(np.isfinite(kernel)):
        raise ValueError("Every kernel value must be a number.")
    return kernel


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Slide the kernel over the image without padding, as Conv2D(padding='valid') does."""
    image = np.asarray(image, dtype=np.float32)
    kernel = check_kernel(kernel)
    if image.ndim != 2 or min(image.shape) < kernel.shape[0]:
        raise ValueError(f"The image must be 2-D and at least as large as the kernel, got shape {image.shape}.")
    return correlate2d(image, kernel, mode="valid").astype(np.float32)


def relu(values: np.ndarray) -> np.ndarray:
    """Negative values become 0: what a ReLU activation does."""
    return np.maximum(values, 0.0)


def max_pool(values: np.ndarray, size: int = 2) -> np.ndarray:
    """Keep the largest value of each size x size square (an odd last row/column is dropped, as in Keras)."""
    values = np.asarray(values)
    height, width = values.shape[0] // size, values.shape[1] // size
    if height == 0 or width == 0:
        raise ValueError(f"The image is smaller than the {size}x{size} pooling window.")
    trimmed = values[: height * size, : width * size]
    return trimmed.reshape(height, size, width, size, *values.shape[2:]).max(axis=(1, 3))


@dataclass(frozen=True, eq=False)
class PlaygroundResult:
    """Input, convolution, activation and pooling of one image with one kernel."""

    image: np.ndarray
    convolved: np.ndarray
    activated: np.ndarray
    pooled: np.ndarray
    relu: bool


def playground(image: np.ndarray, kernel: np.ndarray, use_relu: bool = True) -> PlaygroundResult:
    """Convolve, optionally apply ReLU, then 2x2 max-pool, keeping every step."""
    convolved = convolve(image, kernel)
    activated = relu(convolved) if use_relu else convolved
    return PlaygroundResult(np.asarray(image, np.float32), convolved, activated, max_pool(activated), use_relu)


def _layer_kinds():
    import keras

    return keras.layers.Conv2D, keras.layers.BatchNormalization, keras.layers.Activation, keras.layers.MaxPooling2D


def conv_layers(model) -> list:
    conv2d = _layer_kinds()[0]
    return [layer for layer in model.layers if isinstance(layer, conv2d)]


def has_convolutions(model) -> bool:
    return bool(conv_layers(model))


def learned_filters(model, layer_name: str) -> np.ndarray:
    """The kernels of a Conv2D layer as (size, size, filters), averaged over input channels."""
    layer = model.get_layer(layer_name)
    weights = np.asarray(layer.kernel)  # (size, size, input channels, filters)
    return weights.mean(axis=2)


@dataclass(frozen=True, eq=False)
class Stage:
    """The maps after one step of the network for one image."""

    layer: str  # the Keras layer this step belongs to
    template: str  # the title, marked for translation, e.g. "{layer}: convolution (before {activation})"
    kind: str  # "convolution", "activation", "batch normalisation" or "pooling"
    maps: np.ndarray  # (height, width, channels)
    activation: str = ""

    @property
    def title(self) -> str:
        """E.g. "conv_1: convolution (before relu)", in the current language."""
        return _(self.template).format(layer=self.layer, activation=self.activation)

    @property
    def shape_text(self) -> str:
        height, width, channels = self.maps.shape
        return f"{height}x{width}x{channels}"


class FeatureExtractor:
    """Reads every convolution, activation and pooling output of a model for one image."""

    def __init__(self, model):
        import keras
        import tensorflow as tf

        conv2d, batch_norm, activation, pooling = _layer_kinds()
        self.model = model
        self.layers = [layer for layer in model.layers if isinstance(layer, (conv2d, batch_norm, activation, pooling))]
        if not self.layers:
            raise ValueError("This model has no convolution layers, so it has no feature maps.")
        outputs = []
        for layer in self.layers:
            if isinstance(layer, conv2d):
                # The convolution's input, to show the map before its built-in activation.
                outputs.append(layer.input)
            outputs.append(layer.output)
        probe = keras.Model(inputs=model.inputs, outputs=outputs)
        self._forward = tf.function(
            lambda images: probe(images, training=False),
            input_signature=[tf.TensorSpec(shape=(None, 28, 28), dtype=tf.float32)],
        )

    def stages(self, image: np.ndarray) -> list[Stage]:
        """Feature maps for one normalised 28x28 image, layer by layer."""
        import keras

        conv2d, batch_norm, activation, _pooling = _layer_kinds()
        image = np.asarray(image, np.float32)
        if image.shape != (28, 28):
            raise ValueError(f"Feature maps are read for one 28x28 image, got shape {image.shape}.")
        values = iter(self._forward(image[None]))
        result = []
        for layer in self.layers:
            if isinstance(layer, conv2d):
                layer_input = next(values)
                output = np.asarray(next(values))[0]
                built_in = keras.activations.serialize(layer.activation)
                built_in = built_in if isinstance(built_in, str) else getattr(layer.activation, "__name__", "linear")
                if built_in != "linear":
                    pre = layer.convolution_op(layer_input, layer.kernel)
                    if layer.use_bias:
                        pre = pre + layer.bias
                    result.append(Stage(layer.name, N_("{layer}: convolution (before {activation})"), "convolution", np.asarray(pre)[0], built_in))
                    result.append(Stage(layer.name, N_("{layer}: after {activation}"), "activation", output, built_in))
                else:
                    result.append(Stage(layer.name, N_("{layer}: convolution"), "convolution", output))
                continue
            output = np.asarray(next(values))[0]
            if isinstance(layer, batch_norm):
                result.append(Stage(layer.name, N_("{layer}: batch normalisation"), "batch normalisation", output))
            elif isinstance(layer, activation):
                result.append(Stage(layer.name, N_("{layer}: activation"), "activation", output))
            else:
                result.append(Stage(layer.name, N_("{layer}: 2x2 max pooling"), "pooling", output))
        return result


def follow_filter(stages: list[Stage], conv_layer: str) -> list[Stage]:
    """The stages from one convolution up to the next one: conv -> (batch norm) -> activation -> pool."""
    start = next((index for index, stage in enumerate(stages) if stage.layer == conv_layer), None)
    if start is None:
        raise ValueError(f"No convolution called {conv_layer!r} in this model.")
    followed = [stages[start]]
    for stage in stages[start + 1 :]:
        if stage.kind == "convolution":
            break
        followed.append(stage)
    return followed
