"""Model presets, a builder from a typed config, and a summary the UI can show.

Every model starts with `keras.Input(shape=(28, 28))`, so the output of any layer
(the feature maps of a convolution, for instance) can be read with a sub-model.
A preset is an architecture plus the training recipe it was tuned with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from mnistlab.i18n import N_, _

ACTIVATIONS = ("relu", "elu", "gelu", "tanh", "sigmoid")
MAX_DENSE_LAYERS = 4
MAX_DENSE_UNITS = 4096
# Below this many training images a dataset counts as small.
SMALL_DATA = 10_000


@dataclass(frozen=True)
class ConvBlock:
    """One convolution block: Conv2D (optionally twice), then optional 2x2 max pooling."""

    filters: int = 32
    kernel_size: int = 3
    pool: bool = True
    convolutions: int = 1
    padding: str = "valid"

    def __post_init__(self) -> None:
        if not 1 <= self.filters <= 512:
            raise ValueError(_("A convolution has 1 to 512 filters, and this one has {value}.").format(value=self.filters))
        if self.kernel_size not in (1, 3, 5, 7):
            raise ValueError(_("A kernel is 1, 3, 5 or 7 pixels wide, not {value}.").format(value=self.kernel_size))
        if not 1 <= self.convolutions <= 3:
            raise ValueError(_("A block has 1 to 3 convolutions, not {value}.").format(value=self.convolutions))
        if self.padding not in ("valid", "same"):
            raise ValueError(_("Padding is 'valid' or 'same', not {value}.").format(value=repr(self.padding)))


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a model: conv blocks, then dense layers, then 10 outputs."""

    conv_blocks: tuple[ConvBlock, ...] = ()
    dense_units: tuple[int, ...] = (128,)
    dropout: float = 0.0
    batch_norm: bool = False
    activation: str = "relu"
    # Data augmentation, active in training only: small random rotations, shifts and zooms...
    augmentation: bool = False
    # ...and random left-right mirroring, for images whose mirror is the same class (a shirt, not a 2).
    mirror: bool = False
    num_classes: int = 10

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(_("Dropout is a fraction from 0 to just under 1, not {value}.").format(value=self.dropout))
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                _("The activation is one of {choices}, not {value}.").format(choices=", ".join(ACTIVATIONS), value=repr(self.activation))
            )
        if not self.dense_units and not self.conv_blocks:
            raise ValueError(_("A network needs at least one layer: a dense layer or a convolution block."))
        if len(self.dense_units) > MAX_DENSE_LAYERS:
            raise ValueError(
                _("At most {most} dense layers, and this network has {count}; remove some.").format(
                    most=MAX_DENSE_LAYERS, count=len(self.dense_units)
                )
            )
        for units in self.dense_units:
            if isinstance(units, bool) or not isinstance(units, int) or not 1 <= units <= MAX_DENSE_UNITS:
                raise ValueError(_("Each dense layer has 1 to {most} units, and one has {value}.").format(most=MAX_DENSE_UNITS, value=units))
        if len(self.conv_blocks) > 4:
            raise ValueError(_("At most 4 convolution blocks fit a 28x28 image."))
        size = 28
        for block in self.conv_blocks:
            for _convolution in range(block.convolutions):
                if block.padding == "valid":
                    size -= block.kernel_size - 1
            if block.pool:
                size //= 2
            if size < 1:
                raise ValueError(
                    _(
                        "These convolution blocks shrink the 28x28 image to nothing; use fewer blocks, smaller kernels, "
                        "'same' padding or less pooling."
                    )
                )

    @property
    def is_convolutional(self) -> bool:
        return bool(self.conv_blocks)


# A network written as text, for links and the command line: "conv32,conv64,dense128,dropout0.1,batchnorm".
# conv32 is a 3x3 convolution with 32 filters followed by 2x2 max pooling; k5 makes its kernel 5x5, x2 repeats the
# convolution, "same" pads it, "nopool" leaves the pooling out. dense128 is a dense layer of 128 units.
_CONV_TOKEN = re.compile(r"conv(\d{1,4})(?:k(\d))?(?:x(\d))?(same)?(nopool)?")
_DENSE_TOKEN = re.compile(r"dense(\d{1,5})")
_DROPOUT_TOKEN = re.compile(r"dropout(0?\.\d{1,3}|0)")
NETWORK_EXAMPLE = "conv32,conv64,dense128"


def network_text(config: ModelConfig) -> str:
    """A network's text form (`parse_network` reads it back to the same config)."""
    tokens = []
    for block in config.conv_blocks:
        token = f"conv{block.filters}"
        if block.kernel_size != 3:
            token += f"k{block.kernel_size}"
        if block.convolutions != 1:
            token += f"x{block.convolutions}"
        if block.padding == "same":
            token += "same"
        if not block.pool:
            token += "nopool"
        tokens.append(token)
    tokens += [f"dense{units}" for units in config.dense_units]
    if config.dropout:
        tokens.append(f"dropout{config.dropout:g}")
    if config.batch_norm:
        tokens.append("batchnorm")
    if config.activation != "relu":
        tokens.append(config.activation)
    if config.augmentation:
        tokens.append("augment")
    if config.mirror:
        tokens.append("mirror")
    return ",".join(tokens)


def parse_network(text: str) -> ModelConfig:
    """Read a network's text form; a ValueError says which part is not understood and shows an example."""
    blocks, units = [], []
    options: dict = {}
    parts = [part for part in re.split(r"[,\s]+", str(text).strip().lower()) if part]
    if not parts:
        raise ValueError(_("Describe the network, for example {example}.").format(example=NETWORK_EXAMPLE))
    for part in parts:
        if conv := _CONV_TOKEN.fullmatch(part):
            filters, kernel, repeat, same, nopool = conv.groups()
            blocks.append(
                ConvBlock(
                    int(filters),
                    int(kernel or 3),
                    pool=not nopool,
                    convolutions=int(repeat or 1),
                    padding="same" if same else "valid",
                )
            )
        elif dense := _DENSE_TOKEN.fullmatch(part):
            units.append(int(dense.group(1)))
        elif dropout := _DROPOUT_TOKEN.fullmatch(part):
            options["dropout"] = float(dropout.group(1))
        elif part == "batchnorm":
            options["batch_norm"] = True
        elif part == "augment":
            options["augmentation"] = True
        elif part == "mirror":
            options["mirror"] = True
        elif part in ACTIVATIONS:
            options["activation"] = part
        else:
            raise ValueError(
                _(
                    "{part!r} is not a layer MNIST Lab knows. Write layers like {example} "
                    "(conv32 is a convolution with 32 filters, dense128 a dense layer of 128 units)."
                ).format(part=part[:20], example=NETWORK_EXAMPLE)
            )
    return ModelConfig(conv_blocks=tuple(blocks), dense_units=tuple(units), **options)


@dataclass(frozen=True)
class Recipe:
    """How a preset is trained by default (each value can be changed in the settings)."""

    batch_size: int = 32
    learning_rate: float = 0.001
    optimizer: str = "adam"  # "adam" or "adamw"
    schedule: str = "constant"  # "constant" or "one_cycle"
    max_epochs: int = 5
    steps_per_execution: int = 1
    # The recipe for a small training set (the 5,000-digit MNIST sample): each epoch is
    # short, so the network needs more epochs, and smaller batches give more updates.
    small_data: Recipe | None = None

    def for_size(self, train_images: int) -> Recipe:
        """The recipe to use for a training set of this size."""
        if train_images < SMALL_DATA and self.small_data is not None:
            return self.small_data
        return self


@dataclass(frozen=True)
class Preset:
    """A named architecture with its one-line explanation and its training recipe."""

    name: str
    title: str
    explanation: str
    config: ModelConfig
    recipe: Recipe = field(default_factory=Recipe)
    # Small shifts, rotations and zooms help handwriting, not the aligned clothes photos. (Mirroring, for clothes
    # only, is a choice of a network of your own: no preset trains long enough to gain from it.)
    augment_for: tuple[str, ...] = ()

    def config_for(self, dataset: str) -> ModelConfig:
        """The architecture for a dataset (augmentation is switched on where it helps)."""
        return replace(
            self.config,
            augmentation=self.config.augmentation or dataset in self.augment_for,
        )


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="dense",
            title=N_("Classic dense network"),
            explanation=N_("Flatten, Dense 128 relu, Dense 10 softmax: the first model of the lessons."),
            config=ModelConfig(dense_units=(128,)),
            recipe=Recipe(batch_size=32, max_epochs=5, steps_per_execution=32),
        ),
        Preset(
            name="dense2",
            title=N_("Deeper dense network"),
            explanation=N_("Two hidden layers of 128 units: more capacity, still no notion of shapes."),
            config=ModelConfig(dense_units=(128, 128)),
            recipe=Recipe(batch_size=32, max_epochs=5, steps_per_execution=32),
        ),
        Preset(
            name="cnn",
            title=N_("Classic CNN"),
            explanation=N_(
                "Conv2D 32 3x3, MaxPooling 2x2, Conv2D 64, MaxPooling, Dense 128, Dense 10: "
                "filters learn strokes and edges, pooling keeps the strongest."
            ),
            config=ModelConfig(conv_blocks=(ConvBlock(32), ConvBlock(64)), dense_units=(128,)),
            recipe=Recipe(batch_size=32, max_epochs=5, steps_per_execution=8),
        ),
        Preset(
            name="fast_cnn",
            title=N_("Fast CNN (tuned for a laptop CPU)"),
            explanation=N_(
                "A small CNN with batch normalisation, batches of 128 and a one-cycle learning rate: good accuracy within a minute on two CPU cores."
            ),
            # Three epochs of a one-cycle schedule, no dropout (it held back a training this short: measured):
            # docs/PERFORMANCE.md gives the accuracy and seconds this recipe was measured at.
            config=ModelConfig(conv_blocks=(ConvBlock(32), ConvBlock(64)), dense_units=(128,), batch_norm=True),
            recipe=Recipe(
                batch_size=128,
                learning_rate=0.008,
                optimizer="adamw",
                schedule="one_cycle",
                max_epochs=3,
                small_data=Recipe(batch_size=64, learning_rate=0.003, optimizer="adamw", schedule="one_cycle", max_epochs=30),
            ),
            augment_for=("mnist",),
        ),
        Preset(
            name="accurate_cnn",
            title=N_("Accurate CNN (a few minutes)"),
            explanation=N_(
                "Three convolution blocks with batch normalisation and dropout, one-cycle learning rate: "
                "the best accuracy here in under three minutes."
            ),
            config=ModelConfig(
                conv_blocks=(ConvBlock(32, padding="same"), ConvBlock(64, padding="same"), ConvBlock(128, padding="same")),
                dense_units=(128,),
                dropout=0.3,
                batch_norm=True,
            ),
            recipe=Recipe(
                batch_size=128,
                learning_rate=0.006,
                optimizer="adamw",
                schedule="one_cycle",
                max_epochs=8,
                small_data=Recipe(batch_size=64, learning_rate=0.003, optimizer="adamw", schedule="one_cycle", max_epochs=20),
            ),
            # Mirrored clothes did not help a training of eight epochs (measured), so only the digits are augmented.
            augment_for=("mnist",),
        ),
    )
}


def get_preset(name: str) -> Preset:
    """The preset called `name`, or a ValueError listing the presets."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"Unknown architecture {name!r}. Choose one of: {', '.join(PRESETS)} (or build your own).") from None


def build_model(config: ModelConfig, name: str = "model", seed: int | None = None):
    """Build an (uncompiled) Keras model from a config. It outputs probabilities for each class."""
    import keras

    from mnistlab.layers import FusedBatchNormalization

    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(28, 28), name="image")
    x = inputs
    if config.is_convolutional or config.augmentation or config.mirror:
        x = keras.layers.Reshape((28, 28, 1), name="add_channel")(x)
    # The augmentation layers only act during training; at prediction time they pass the image through.
    if config.mirror:
        x = keras.layers.RandomFlip("horizontal", name="random_mirror")(x)
    if config.augmentation:
        x = keras.layers.RandomRotation(0.05, fill_mode="constant", name="random_rotation")(x)
        x = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", name="random_shift")(x)
        x = keras.layers.RandomZoom(0.1, fill_mode="constant", name="random_zoom")(x)
    if not config.is_convolutional:
        x = keras.layers.Flatten(name="flatten")(x)
    for block_number, block in enumerate(config.conv_blocks, start=1):
        for conv_number in range(1, block.convolutions + 1):
            suffix = f"{block_number}" if block.convolutions == 1 else f"{block_number}_{conv_number}"
            if config.batch_norm:
                # Batch normalisation sits between the convolution and its activation.
                x = keras.layers.Conv2D(block.filters, block.kernel_size, padding=block.padding, use_bias=False, name=f"conv_{suffix}")(x)
                # Keras' BatchNormalization, trained on TensorFlow's faster fused kernel.
                x = FusedBatchNormalization(name=f"batch_norm_{suffix}")(x)
                x = keras.layers.Activation(config.activation, name=f"{config.activation}_{suffix}")(x)
            else:
                x = keras.layers.Conv2D(
                    block.filters,
                    block.kernel_size,
                    padding=block.padding,
                    activation=config.activation,
                    name=f"conv_{suffix}",
                )(x)
        if block.pool:
            x = keras.layers.MaxPooling2D(2, name=f"max_pooling_{block_number}")(x)
    if config.is_convolutional:
        x = keras.layers.Flatten(name="flatten")(x)
    for layer_number, units in enumerate(config.dense_units, start=1):
        x = keras.layers.Dense(units, activation=config.activation, name=f"dense_{layer_number}")(x)
        if config.dropout > 0:
            x = keras.layers.Dropout(config.dropout, name=f"dropout_{layer_number}")(x)
    # The probabilities are computed in float32 whatever the policy (bfloat16 keeps only about 3 digits).
    outputs = keras.layers.Dense(config.num_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


@dataclass(frozen=True)
class LayerRow:
    """One row of a model summary."""

    name: str
    kind: str
    output_shape: str
    parameters: int


def model_summary(model) -> list[LayerRow]:
    """The layers of a model with their output shapes and parameter counts, input first."""
    rows = []
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        shape = tuple(shape.shape) if shape is not None else ()
        rows.append(
            LayerRow(
                name=layer.name,
                kind=type(layer).__name__,
                output_shape="(" + ", ".join("batch" if size is None else str(size) for size in shape) + ")",
                parameters=int(layer.count_params()) if layer.built else 0,
            )
        )
    return rows
