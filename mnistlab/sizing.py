"""How big a network is and how long it takes to train, worked out from its description alone.

The Train page shows a network's layers, output shapes and parameters, and the server
refuses networks too big to train for a class, before anything is built: a student's
four dense layers of 4,096 units (72 million parameters) used to be built in the web
server just to be described, which cost gigabytes. Here the same figures come from
arithmetic on the `ModelConfig` (a test checks them against the Keras model that
`mnistlab.models.build_model` builds).

`epoch_seconds` estimates an epoch from the network's arithmetic (multiply-adds per
image) and its number of steps, with this server's speed (`Speed`), which the job
manager measures from the server's own recorded epochs. `check_size` refuses a network
over the server's limits with a message that says what to make smaller.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnistlab.i18n import _, number
from mnistlab.models import ModelConfig

# Default limits for one training on a class's server (MNISTLAB_MAX_PARAMETERS, MNISTLAB_MAX_EPOCH_SECONDS).
MAX_PARAMETERS = 3_000_000
MAX_EPOCH_SECONDS = 120.0


@dataclass(frozen=True)
class LayerSize:
    """One layer as `build_model` makes it: its name, kind, output shape and parameters."""

    name: str
    kind: str
    output_shape: tuple[int, ...]  # without the batch dimension
    parameters: int
    flops: int  # multiply-adds x 2 of one image's forward pass

    @property
    def shape_text(self) -> str:
        return "(" + ", ".join(["batch", *map(str, self.output_shape)]) + ")"


def layer_sizes(config: ModelConfig) -> list[LayerSize]:
    """The layers `build_model(config)` makes, input first, with their sizes (no Keras needed)."""
    rows = [LayerSize("image", "InputLayer", (28, 28), 0, 0)]
    height = width = 28
    channels = 1
    if config.is_convolutional or config.augmentation or config.mirror:
        rows.append(LayerSize("add_channel", "Reshape", (28, 28, 1), 0, 0))
    if config.mirror:
        rows.append(LayerSize("random_mirror", "RandomFlip", (28, 28, 1), 0, 0))
    if config.augmentation:
        for name, kind in (("random_rotation", "RandomRotation"), ("random_shift", "RandomTranslation"), ("random_zoom", "RandomZoom")):
            rows.append(LayerSize(name, kind, (28, 28, 1), 0, 0))
    if not config.is_convolutional:
        rows.append(LayerSize("flatten", "Flatten", (784,), 0, 0))
    for block_number, block in enumerate(config.conv_blocks, start=1):
        for conv_number in range(1, block.convolutions + 1):
            suffix = f"{block_number}" if block.convolutions == 1 else f"{block_number}_{conv_number}"
            if block.padding == "valid":
                height, width = height - block.kernel_size + 1, width - block.kernel_size + 1
            weights = block.kernel_size * block.kernel_size * channels * block.filters
            flops = 2 * height * width * weights
            channels = block.filters
            shape = (height, width, channels)
            if config.batch_norm:
                rows.append(LayerSize(f"conv_{suffix}", "Conv2D", shape, weights, flops))
                rows.append(LayerSize(f"batch_norm_{suffix}", "BatchNormalization", shape, 4 * channels, 4 * height * width * channels))
                rows.append(LayerSize(f"{config.activation}_{suffix}", "Activation", shape, 0, height * width * channels))
            else:
                rows.append(LayerSize(f"conv_{suffix}", "Conv2D", shape, weights + block.filters, flops + height * width * channels))
        if block.pool:
            height, width = height // 2, width // 2
            rows.append(LayerSize(f"max_pooling_{block_number}", "MaxPooling2D", (height, width, channels), 0, 4 * height * width * channels))
    features = height * width * channels if config.is_convolutional else 784
    if config.is_convolutional:
        rows.append(LayerSize("flatten", "Flatten", (features,), 0, 0))
    for layer_number, units in enumerate(config.dense_units, start=1):
        rows.append(LayerSize(f"dense_{layer_number}", "Dense", (units,), features * units + units, 2 * features * units))
        if config.dropout > 0:
            rows.append(LayerSize(f"dropout_{layer_number}", "Dropout", (units,), 0, 0))
        features = units
    rows.append(
        LayerSize(
            "probabilities", "Dense", (config.num_classes,), features * config.num_classes + config.num_classes, 2 * features * config.num_classes
        )
    )
    return rows


def parameter_count(config: ModelConfig) -> int:
    return sum(row.parameters for row in layer_sizes(config))


def training_flops_per_image(config: ModelConfig) -> int:
    """Arithmetic of one image's training step: the forward pass, and about twice that backwards."""
    return 3 * sum(row.flops for row in layer_sizes(config))


@dataclass(frozen=True)
class Speed:
    """How fast this server trains: arithmetic per second, and a fixed cost per step (Python, Keras, the batch).

    The defaults were measured on a 2-core server (a dense network's epoch on Fashion-MNIST about 2 s, the
    fast CNN's about 11 s); `scale` is how this server's recorded epochs compare with them (1.0 until it has some)."""

    flops_per_second: float = 80e9
    seconds_per_step: float = 0.001
    scale: float = 1.0
    measured_epochs: int = 0


def epoch_seconds(config: ModelConfig, train_images: int, batch_size: int, speed: Speed = Speed()) -> float:
    """An estimate of one epoch's seconds on this server."""
    steps = -(-train_images // max(1, batch_size))
    seconds = train_images * training_flops_per_image(config) / speed.flops_per_second + steps * speed.seconds_per_step
    return seconds * speed.scale


@dataclass(frozen=True)
class Limits:
    """The biggest training a class's server accepts."""

    max_parameters: int = MAX_PARAMETERS
    max_epoch_seconds: float = MAX_EPOCH_SECONDS


def check_size(config: ModelConfig, train_images: int, batch_size: int, limits: Limits = Limits(), speed: Speed = Speed()) -> None:
    """Refuse a network over the server's limits, with a message that says what to make smaller."""
    rows = layer_sizes(config)
    parameters = sum(row.parameters for row in rows)
    if parameters > limits.max_parameters:
        biggest = max(rows, key=lambda row: row.parameters)
        raise ValueError(
            _(
                "This network has {parameters} parameters; this server trains at most {limit} for a class. Make it smaller: "
                "{layer} alone has {layer_parameters} (fewer units in the dense layers, fewer filters, or more pooling before "
                "the first dense layer)."
            ).format(
                parameters=number(parameters),
                limit=number(limits.max_parameters),
                layer=biggest.name,
                layer_parameters=number(biggest.parameters),
            )
        )
    seconds = epoch_seconds(config, train_images, batch_size, speed)
    if seconds > limits.max_epoch_seconds:
        raise ValueError(
            _(
                "One epoch of this network would take about {seconds} s here; this server allows {limit} s an epoch so the "
                "class's trainings keep moving. Use fewer filters or smaller layers, or fewer training images."
            ).format(seconds=number(seconds), limit=number(limits.max_epoch_seconds))
        )
