"""Take the lesson home: the plain Keras code of a network and its training, as a script or a Jupyter notebook.

`keras_code(settings)` writes the code a student would write in the course's notebooks,
with nothing of MNIST Lab in it: it loads the data the standard way
(`keras.datasets.fashion_mnist.load_data()`, a class's drawings from the exported
`.npz`), normalises it as the run did, takes the same balanced part of the images,
builds the same network from `keras.Input` (plain `BatchNormalization`, the same
augmentation layers), compiles it with the same optimiser and learning-rate schedule
(the one-cycle schedule as a small `LearningRateSchedule`), stops at the target with a
small callback class, trains with `fit(..., validation_split=...)`, evaluates on the test
set and plots the curves and a few predictions with matplotlib. Its comments speak the
page's language. `notebook(settings)` makes the same steps a notebook (nbformat), each
code cell after a markdown cell that explains the step from the glossary.

The code is float32 (the server may train in bfloat16; every computer has float32) and
lets Keras shuffle the batches, so a run reproduced from its code lands within about a
point of the app's result rather than on the very same weights (a test checks it).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from mnistlab.datasets import DATASETS
from mnistlab.glossary import explain, term
from mnistlab.i18n import _, percent
from mnistlab.models import ModelConfig
from mnistlab.runs import run_title
from mnistlab.settings import MONITORS, TrainingSettings

LOADERS = {"mnist": "keras.datasets.mnist.load_data()", "fashion_mnist": "keras.datasets.fashion_mnist.load_data()"}
COLAB = "https://colab.research.google.com"


@dataclass(frozen=True)
class Cell:
    """One step of the code: an explanation (Markdown) and its code."""

    explanation: str
    code: str


def model_code(config: ModelConfig) -> str:
    """The network as plain Keras layers, from keras.Input to the 10 probabilities (the same layers, names and shapes
    as `mnistlab.models.build_model`)."""
    lines = ['inputs = keras.Input(shape=(28, 28), name="image")', "x = inputs"]
    if config.is_convolutional or config.augmentation or config.mirror:
        lines.append('x = keras.layers.Reshape((28, 28, 1), name="add_channel")(x)  # ' + _("one colour channel for the convolutions"))
    if config.mirror:
        lines.append('x = keras.layers.RandomFlip("horizontal", name="random_mirror")(x)')
    if config.augmentation:
        lines.append('x = keras.layers.RandomRotation(0.05, fill_mode="constant", name="random_rotation")(x)')
        lines.append('x = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", name="random_shift")(x)')
        lines.append('x = keras.layers.RandomZoom(0.1, fill_mode="constant", name="random_zoom")(x)')
    if not config.is_convolutional:
        lines.append('x = keras.layers.Flatten(name="flatten")(x)')
    for number, block in enumerate(config.conv_blocks, start=1):
        for repeat in range(1, block.convolutions + 1):
            suffix = f"{number}" if block.convolutions == 1 else f"{number}_{repeat}"
            arguments = f'{block.filters}, {block.kernel_size}, padding="{block.padding}"'
            if config.batch_norm:
                lines.append(f'x = keras.layers.Conv2D({arguments}, use_bias=False, name="conv_{suffix}")(x)')
                lines.append(f'x = keras.layers.BatchNormalization(name="batch_norm_{suffix}")(x)')
                lines.append(f'x = keras.layers.Activation("{config.activation}", name="{config.activation}_{suffix}")(x)')
            else:
                lines.append(f'x = keras.layers.Conv2D({arguments}, activation="{config.activation}", name="conv_{suffix}")(x)')
        if block.pool:
            lines.append(f'x = keras.layers.MaxPooling2D(2, name="max_pooling_{number}")(x)')
    if config.is_convolutional:
        lines.append('x = keras.layers.Flatten(name="flatten")(x)')
    for number, units in enumerate(config.dense_units, start=1):
        lines.append(f'x = keras.layers.Dense({units}, activation="{config.activation}", name="dense_{number}")(x)')
        if config.dropout > 0:
            lines.append(f'x = keras.layers.Dropout({config.dropout:g}, name="dropout_{number}")(x)')
    lines.append(f'outputs = keras.layers.Dense({config.num_classes}, activation="softmax", name="probabilities")(x)')
    lines.append("model = keras.Model(inputs=inputs, outputs=outputs)")
    return "\n".join(lines)


SCHEDULE_CODE = '''class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """{doc}"""

    def __init__(self, peak, total_steps):
        self.peak = peak
        self.warmup = max(1, int(0.25 * total_steps))
        self.decay = max(1, total_steps - self.warmup)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        start = self.peak / 20
        rising = start + (self.peak - start) * step / self.warmup
        done = keras.ops.minimum(step - self.warmup, self.decay) / self.decay
        falling = self.peak * (0.01 + 0.99 * 0.5 * (1 + keras.ops.cos(np.pi * done)))
        return keras.ops.where(step < self.warmup, rising, falling)

    def get_config(self):
        return {{"peak": self.peak, "total_steps": self.warmup + self.decay}}
'''

CALLBACK_CODE = '''class StopAtAccuracy(keras.callbacks.Callback):
    """{doc}"""

    def __init__(self, target, watch):
        super().__init__()
        self.target = target
        self.watch = watch

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {{}}).get(self.watch)
        if value is not None and value >= self.target:
            print(f"{message}")
            self.model.stop_training = True
'''

BALANCED_CODE = '''def balanced_part(images, labels, size, seed):
    """{doc}"""
    order = np.random.default_rng(seed).permutation(len(labels))
    rank = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = order[labels[order] == label]
        rank[members] = np.arange(len(members))
    chosen = np.sort(order[np.lexsort((labels[order], rank[order]))][:size])
    return images[chosen], labels[chosen]
'''


def cells(settings: TrainingSettings, class_drawings: str | None = None, train_images: int | None = None) -> list[Cell]:
    """The steps of the code, each with its explanation (in the current language)."""
    dataset = DATASETS[settings.dataset]
    recipe = settings.recipe_for(train_images or settings.train_size or int(dataset.published_train_size * (1 - settings.validation_split)))
    config = settings.config
    steps: list[Cell] = []

    imports = ["import keras", "import matplotlib.pyplot as plt", "import numpy as np", "", f"SEED = {settings.seed}"]
    imports.append("keras.utils.set_random_seed(SEED)  # " + _("the same first weights and image order every time"))
    steps.append(Cell(_("Keras, NumPy and matplotlib, and the seed that makes the training repeatable.") + " " + explain("seed"), "\n".join(imports)))

    data = [f"(x_train, y_train), (x_test, y_test) = {LOADERS[settings.dataset]}"]
    data.append("CLASS_NAMES = " + repr([str(name) for name in dataset.class_names]))
    if settings.train_size or settings.test_size:
        data += ["", BALANCED_CODE.format(doc=_("A part of the images with each class equally often (the same part for the same seed)."))]
        if settings.train_size:
            data.append(f"x_train, y_train = balanced_part(x_train, y_train, {settings.train_size}, SEED)")
        if settings.test_size:
            data.append(f"x_test, y_test = balanced_part(x_test, y_test, {settings.test_size}, SEED + 1)")
    if class_drawings:
        data += [
            "",
            "# " + _("The class's own drawings (downloaded from the Class page): their training half joins the training images."),
            f'with np.load("{class_drawings}") as drawings:',
            '    x_train = np.concatenate([x_train, drawings["x_train"]])',
            '    y_train = np.concatenate([y_train, drawings["y_train"]])',
        ]
    if settings.normalization == "keras_normalize":
        data += [
            "# " + _("Each column of pixels scaled to length 1"),
            'x_train = keras.utils.normalize(x_train.astype("float32"), axis=1)',
            'x_test = keras.utils.normalize(x_test.astype("float32"), axis=1)',
        ]
    else:
        data += ["# " + _("Pixels from 0..255 to 0..1"), 'x_train = x_train.astype("float32") / 255', 'x_test = x_test.astype("float32") / 255']
    data.append('print(f"{len(y_train):,} training images, {len(y_test):,} test images")')
    steps.append(
        Cell(
            _("The {dataset}: 28x28 grey images and their labels, split into training and test images.").format(dataset=_(dataset.title))
            + " "
            + explain("normalisation"),
            "\n".join(data),
        )
    )

    explanations = [explain("flatten"), explain("dense"), explain("relu"), explain("softmax")]
    if config.is_convolutional:
        explanations += [explain("convolution"), explain("max_pooling")]
    if config.batch_norm:
        explanations.append(explain("batch_normalisation"))
    if config.dropout:
        explanations.append(explain("dropout"))
    if config.augmentation or config.mirror:
        explanations.append(explain("augmentation"))
    steps.append(
        Cell(
            _("The network, layer by layer: {title}.").format(title=run_title(settings)) + " " + " ".join(explanations),
            model_code(config) + "\nmodel.summary()",
        )
    )

    steps_total = f"{recipe.max_epochs} * int(np.ceil(len(y_train) * (1 - {settings.validation_split:g}) / {recipe.batch_size}))"
    optimizer_class = "AdamW" if recipe.optimizer == "adamw" else "Adam"
    extra = ", weight_decay=1e-4" if recipe.optimizer == "adamw" else ""
    compile_lines = []
    if recipe.schedule == "one_cycle":
        compile_lines += [
            SCHEDULE_CODE.format(doc=_("Start small, rise to the peak in the first quarter of the steps, then fall slowly (a cosine).")),
            "",
        ]
        compile_lines.append(f"learning_rate = OneCycle(peak={recipe.learning_rate:g}, total_steps={steps_total})")
    else:
        compile_lines.append(f"learning_rate = {recipe.learning_rate:g}")
    compile_lines.append("model.compile(")
    compile_lines.append(f"    optimizer=keras.optimizers.{optimizer_class}(learning_rate=learning_rate{extra}),")
    compile_lines.append('    loss="sparse_categorical_crossentropy",  # ' + _("the labels are class numbers 0 to 9"))
    compile_lines.append('    metrics=["accuracy"],')
    compile_lines.append(")")
    steps.append(
        Cell(
            _("How the network learns: the loss it makes smaller, and the optimiser's steps.")
            + " "
            + explain("loss")
            + " "
            + explain("learning_rate"),
            "\n".join(compile_lines),
        )
    )

    callbacks = "[]"
    if settings.target_accuracy is not None:
        stop = CALLBACK_CODE.format(
            doc=_("Stop training as soon as the watched accuracy reaches the target."),
            message=_("Reached {value} at epoch {epoch}: stop.").replace("{value}", "{value:.2%}").replace("{epoch}", "{epoch + 1}"),
        )
        callbacks = f'[StopAtAccuracy(target={settings.target_accuracy:g}, watch="{settings.monitor}")]'
        steps.append(
            Cell(
                _("A callback that stops training at {target} {watched}.").format(
                    target=percent(settings.target_accuracy), watched=_(MONITORS[settings.monitor])
                )
                + " "
                + explain("callback"),
                stop,
            )
        )

    fit = [
        "history = model.fit(",
        "    x_train,",
        "    y_train,",
        f"    batch_size={recipe.batch_size},",
        f"    epochs={recipe.max_epochs},",
        f"    validation_split={settings.validation_split:g},  # " + _("images kept aside to watch training fairly"),
        f"    callbacks={callbacks},",
        "    verbose=2,  # " + _("one line per epoch"),
        ")",
    ]
    steps.append(
        Cell(
            _("Training: the network sees the training images in batches, epoch after epoch.")
            + " "
            + explain("epoch")
            + " "
            + explain("batch")
            + " "
            + explain("validation"),
            "\n".join(fit),
        )
    )

    steps.append(
        Cell(
            _("The test: images the network never trained on.") + " " + explain("test"),
            "test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)\n"
            'print(f"test accuracy {test_accuracy:.2%}, test loss {test_loss:.4f}")',
        )
    )
    curves = [
        "figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))",
        'for axis, metric in ((left, "loss"), (right, "accuracy")):',
        '    axis.plot(history.history[metric], marker="o", label="training")',
        '    axis.plot(history.history[f"val_{metric}"], marker="o", label="validation")',
        '    axis.set_xlabel("epoch")',
        "    axis.set_title(metric)",
        "    axis.legend()",
    ]
    if settings.target_accuracy is not None:
        curves.append(f'right.axhline({settings.target_accuracy:g}, color="red", linestyle="--", label="target")')
    curves.append("plt.show()")
    steps.append(Cell(_("The curves of the training.") + " " + explain("overfitting"), "\n".join(curves)))
    predictions = [
        "probabilities = model.predict(x_test[:12], verbose=0)",
        "figure, axes = plt.subplots(2, 6, figsize=(11, 4))",
        "for axis, image, label, answer in zip(axes.flat, x_test[:12], y_test[:12], probabilities):",
        '    axis.imshow(image, cmap="gray")',
        '    axis.set_title(f"{CLASS_NAMES[answer.argmax()]} ({answer.max():.0%})", color="green" if answer.argmax() == label else "red")',
        '    axis.axis("off")',
        "plt.show()",
    ]
    steps.append(Cell(_("A few test images and the network's answers (red: a mistake).") + " " + explain("softmax"), "\n".join(predictions)))
    return steps


def introduction(settings: TrainingSettings, run_id: int | None = None) -> str:
    what = _("Run {run}: {title}").format(run=run_id, title=run_title(settings)) if run_id else run_title(settings)
    return (
        f"# {what}\n\n"
        + _("This is the plain Keras code of a network trained in MNIST Lab: it runs as it is, with no MNIST Lab, in Jupyter or in Colab.")
        + "\n\n"
        + _("To open it in Colab: go to {colab}, choose File, Upload notebook, and pick this file.").format(colab=COLAB)
    )


def keras_code(settings: TrainingSettings, run_id: int | None = None, class_drawings: str | None = None, train_images: int | None = None) -> str:
    """The whole training as one Python script, each step's explanation as comments."""
    parts = [f'"""{introduction(settings, run_id).replace(chr(34) * 3, "")}\n"""', ""]
    for cell in cells(settings, class_drawings, train_images):
        comment = textwrap.fill(cell.explanation, width=110, initial_indent="# ", subsequent_indent="# ")
        parts += [comment, cell.code, ""]
    return "\n".join(parts).rstrip() + "\n"


def notebook(settings: TrainingSettings, run_id: int | None = None, class_drawings: str | None = None, train_images: int | None = None):
    """The same steps as a Jupyter notebook: a markdown cell explaining each step before its code."""
    import nbformat

    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.cells.append(nbformat.v4.new_markdown_cell(introduction(settings, run_id)))
    for cell in cells(settings, class_drawings, train_images):
        step = _("Step")
        book.cells.append(nbformat.v4.new_markdown_cell(f"**{step}.** {cell.explanation}"))
        book.cells.append(nbformat.v4.new_code_cell(cell.code))
    return book


def notebook_text(settings: TrainingSettings, **keywords) -> str:
    import nbformat

    return nbformat.writes(notebook(settings, **keywords))


__all__ = ["Cell", "cells", "keras_code", "model_code", "notebook", "notebook_text", "term"]
