"""The Train page's form: dataset, architecture (a preset or your own) and how to train it.

Every widget has a key, seeded once per session from the settings to start with (the
run being viewed after a reload, or a lesson's link), so a reload keeps the form.
Changing the dataset or the preset puts that preset's recipe (epochs, batch size,
learning rate) into the form. `choose_settings` returns checked `TrainingSettings`,
or None after showing why they are impossible.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mnistlab.datasets import DATASETS, NORMALIZATIONS
from mnistlab.glossary import explain
from mnistlab.i18n import _, current_language
from mnistlab.i18n import number as format_number
from mnistlab.models import PRESETS, ConvBlock, ModelConfig, get_preset
from mnistlab.settings import CUSTOM_RECIPE, MONITORS, TrainingSettings
from mnistlab_ui.data import dataset_or_error
from mnistlab_ui.session import TRAIN_FORM

CUSTOM = "custom"
ALL_IMAGES = 0  # the select box's value for "all the training images" (Streamlit shows None as no choice)
TRAINING_IMAGES = (ALL_IMAGES, 10_000, 5_000, 1_000)
BATCH_SIZES = (16, 32, 64, 128, 256, 512)
LEARNING_RATES = (0.0001, 0.0003, 0.001, 0.002, 0.003, 0.004, 0.006, 0.008, 0.01)
FILTERS = (8, 16, 32, 64, 128)
KERNEL_SIZES = (3, 5)
# Keys of the form's widgets (widget state, not app state: see mnistlab_ui.session).
K = {
    name: f"train.{name}"
    for name in (
        "dataset",
        "arch",
        "stop_at_target",
        "target",
        "monitor",
        "check_every",
        "max_epochs",
        "batch_size",
        "learning_rate",
        "validation_split",
        "normalization",
        "train_size",
        "blocks",
        "units",
        "dropout",
        "batch_norm",
        "augmentation",
        "mirror",
    )
}


def _nearest(options: tuple, value):
    return min(options, key=lambda option: abs(option - value))


def _recipe_values(dataset: str, arch: str) -> dict:
    """The epochs, batch size and learning rate of a preset's recipe for a dataset's size."""
    if arch == CUSTOM:
        recipe = CUSTOM_RECIPE
    else:
        dataset_info, _error = dataset_or_error(dataset)
        size = len(dataset_info.y_train) if dataset_info is not None else DATASETS[dataset].published_train_size
        recipe = get_preset(arch).recipe.for_size(size)
    return {
        K["max_epochs"]: recipe.max_epochs,
        K["batch_size"]: _nearest(BATCH_SIZES, recipe.batch_size),
        K["learning_rate"]: _nearest(LEARNING_RATES, recipe.learning_rate),
    }


def _apply_recipe() -> None:
    st.session_state.update(_recipe_values(st.session_state[K["dataset"]], st.session_state[K["arch"]]))


def seed(settings: TrainingSettings, replace: bool = False) -> None:
    """Fill the form: with what this session last had in it, else from `settings`; with `replace`, from `settings`.

    Streamlit forgets a widget's value when a page without it runs (a visit to the Draw
    page), so the form's values are also kept in session state and put back here. A
    link's settings replace whatever the form had.
    """
    remembered = TRAIN_FORM.get()
    if remembered and not replace:
        for key, value in remembered.items():
            st.session_state.setdefault(key, value)
        return
    values = {
        K["dataset"]: settings.dataset,
        K["arch"]: settings.arch,
        K["stop_at_target"]: settings.target_accuracy is not None,
        K["target"]: settings.target_accuracy or DATASETS[settings.dataset].suggested_target,
        K["monitor"]: settings.monitor,
        K["check_every"]: settings.check_every_batches,
        K["validation_split"]: settings.validation_split,
        K["normalization"]: settings.normalization,
        K["train_size"]: settings.train_size if settings.train_size in TRAINING_IMAGES else ALL_IMAGES,
        **_recipe_values(settings.dataset, settings.arch),
    }
    if settings.max_epochs:
        values[K["max_epochs"]] = min(200, settings.max_epochs)
    if settings.batch_size:
        values[K["batch_size"]] = _nearest(BATCH_SIZES, settings.batch_size)
    if settings.learning_rate:
        values[K["learning_rate"]] = _nearest(LEARNING_RATES, settings.learning_rate)
    config = settings.model_config
    if settings.arch == CUSTOM and config is not None:
        values.update(
            {
                K["blocks"]: min(3, len(config.conv_blocks)),
                K["units"]: ", ".join(map(str, config.dense_units)),
                K["dropout"]: config.dropout,
                K["batch_norm"]: config.batch_norm,
                K["augmentation"]: config.augmentation,
                K["mirror"]: config.mirror,
            }
        )
        for number, block in enumerate(config.conv_blocks[:3], start=1):
            values.update(
                {
                    f"train.block{number}.filters": _nearest(FILTERS, block.filters),
                    f"train.block{number}.kernel": block.kernel_size if block.kernel_size in KERNEL_SIZES else 3,
                    f"train.block{number}.pool": block.pool,
                }
            )
    for key, value in values.items():
        if replace:
            st.session_state[key] = value
        else:
            st.session_state.setdefault(key, value)
    if replace:
        remember()


def remember() -> None:
    """Keep the form's current values for the next visit of the page."""
    TRAIN_FORM.set({key: value for key, value in st.session_state.items() if isinstance(key, str) and key.startswith("train.")})


def _default(key: str, value) -> str:
    """Give a widget its first value through session state (never twice), and return its key."""
    st.session_state.setdefault(key, value)
    return key


def custom_config() -> ModelConfig:
    """The "build your own" form."""
    blocks = []
    block_count = st.slider(
        _("Convolution blocks"), 0, 3, key=_default(K["blocks"], 1), help=_("Each block is a Conv2D layer, optionally followed by 2x2 max pooling.")
    )
    for number in range(1, block_count + 1):
        left, middle, right = st.columns(3)
        filters = left.selectbox(
            _("Block {number}: filters").format(number=number),
            FILTERS,
            key=_default(f"train.block{number}.filters", FILTERS[2 + min(number - 1, 2)]),
            help=_("How many different patterns this layer learns to detect."),
        )
        kernel = middle.selectbox(
            _("Block {number}: kernel size").format(number=number),
            KERNEL_SIZES,
            key=_default(f"train.block{number}.kernel", 3),
            help=_("The size of each filter, in pixels."),
        )
        pool = right.checkbox(
            _("Block {number}: max pooling").format(number=number),
            key=_default(f"train.block{number}.pool", True),
            help=explain("max_pooling"),
        )
        blocks.append(ConvBlock(filters, kernel, pool))
    units_text = st.text_input(
        _("Dense layers (units, comma separated)"),
        key=_default(K["units"], "128"),
        help=explain("dense") + " " + _("For example '128' or '256, 128'."),
    )
    try:
        units = tuple(int(part) for part in units_text.replace(" ", "").split(",") if part)
    except ValueError:
        raise ValueError(_("Dense layers must be whole numbers separated by commas, got {text!r}.").format(text=units_text)) from None
    dropout = st.slider(
        _("Dropout"),
        0.0,
        0.7,
        step=0.05,
        key=_default(K["dropout"], 0.0),
        help=_("During training, switch off this fraction of dense units at random, so the network cannot rely on any one of them."),
    )
    batch_norm = st.checkbox(
        _("Batch normalisation"),
        key=_default(K["batch_norm"], False),
        help=_("Re-centre each convolution's outputs during training: faster, steadier learning."),
    )
    left, right = st.columns(2)
    augmentation = left.checkbox(
        _("Augment: small rotations, shifts and zooms"),
        key=_default(K["augmentation"], False),
        help=_("Each epoch sees slightly moved copies of the training images, so the network learns shapes, not places."),
    )
    mirror = right.checkbox(
        _("Augment: mirror left-right"),
        key=_default(K["mirror"], False),
        help=_("Good for clothes (a mirrored shoe is still a shoe), wrong for digits (a mirrored 2 is not a 2)."),
    )
    return ModelConfig(conv_blocks=tuple(blocks), dense_units=units, dropout=dropout, batch_norm=batch_norm, augmentation=augmentation, mirror=mirror)


@st.cache_data(show_spinner=False, max_entries=64)
def layer_table(config_text: str, language: str, _config: ModelConfig) -> pd.DataFrame:
    """The layers of a model built from a config (cached by the config's text)."""
    from mnistlab.models import build_model, model_summary

    rows = model_summary(build_model(_config))
    return pd.DataFrame(
        {
            _("layer"): [row.name for row in rows],
            _("kind"): [row.kind for row in rows],
            _("output shape"): [row.output_shape for row in rows],
            _("parameters"): [row.parameters for row in rows],
        }
    )


def _training_images_label(size: int) -> str:
    return _("all") if size == ALL_IMAGES else format_number(size)


def choose_settings() -> TrainingSettings | None:
    """Dataset, architecture and training settings; None (with a message) when they are impossible."""
    try:
        return _form()
    finally:
        remember()


def _form() -> TrainingSettings | None:
    left, right = st.columns(2)
    with left:
        dataset_name = st.selectbox(
            _("Dataset"), list(DATASETS), key=K["dataset"], on_change=_apply_recipe, format_func=lambda name: _(DATASETS[name].title)
        )
        dataset, error = dataset_or_error(dataset_name)
        if dataset is None:
            st.error(error)
        else:
            sample = _(" (a sample; the Home page says how to get the full set)") if dataset.source.is_sample else ""
            st.caption(
                _("{train} training images, {test} test images{sample}.").format(
                    train=format_number(len(dataset.y_train)), test=format_number(len(dataset.y_test)), sample=sample
                )
            )
        arch = st.selectbox(
            _("Architecture"),
            [*PRESETS, CUSTOM],
            key=K["arch"],
            on_change=_apply_recipe,
            format_func=lambda name: _("Build your own") if name == CUSTOM else _(PRESETS[name].title),
        )
        try:
            config = custom_config() if arch == CUSTOM else get_preset(arch).config_for(dataset_name)
            if arch != CUSTOM:
                st.info(_(get_preset(arch).explanation))
        except ValueError as problem:
            st.error(str(problem))
            return None
    with right:
        stop_at_target = st.checkbox(
            _("Stop at a target accuracy"),
            key=K["stop_at_target"],
            help=explain("callback"),
        )
        target = st.slider(
            _("Target accuracy"),
            0.50,
            1.00,
            step=0.005,
            format="%.3f",
            key=K["target"],
            disabled=not stop_at_target,
            help=explain("accuracy"),
        )
        monitor = st.radio(
            _("Watch"),
            list(MONITORS),
            key=K["monitor"],
            format_func=lambda key: _(MONITORS[key]).capitalize(),
            horizontal=True,
            help=_("Validation accuracy is measured on images the network does not train on: a fairer test."),
        )
        columns = st.columns(3)
        max_epochs = columns[0].number_input(_("Max epochs"), 1, 200, key=K["max_epochs"], help=explain("epoch"))
        batch_size = columns[1].selectbox(_("Batch size"), BATCH_SIZES, key=K["batch_size"], help=explain("batch"))
        learning_rate = columns[2].selectbox(
            _("Learning rate"),
            LEARNING_RATES,
            key=K["learning_rate"],
            format_func=lambda rate: f"{rate:g}",
            help=_("How big each update of the weights is: too big jumps around, too small crawls."),
        )
        with st.expander(_("More settings")):
            check_every = st.number_input(
                _("Check every N batches"),
                0,
                10_000,
                step=50,
                key=K["check_every"],
                help=_(
                    "0 checks the target only at the end of each epoch. Checking during an epoch stops sooner; "
                    "with validation accuracy each check costs a little time."
                ),
            )
            validation_split = st.slider(
                _("Validation split"),
                0.0,
                0.3,
                step=0.05,
                key=K["validation_split"],
                help=explain("validation") + " " + _("This is the fraction of training images kept aside for it."),
            )
            normalization = st.radio(
                _("Normalisation"),
                list(NORMALIZATIONS),
                key=K["normalization"],
                horizontal=True,
                format_func=lambda key: "÷ 255" if key == "divide_255" else "keras normalize",
                help=explain("normalisation") + " " + " / ".join(_(text) for text in NORMALIZATIONS.values()),
            )
            train_size = st.selectbox(
                _("Training images"),
                TRAINING_IMAGES,
                key=K["train_size"],
                format_func=_training_images_label,
                help=_("Fewer images train faster, for a quick try."),
            )
    with st.expander(_("Layers, output shapes and parameters"), expanded=arch != CUSTOM):
        st.caption(explain("flatten") + " " + explain("dense"))
        table = layer_table(repr(config), current_language(), config)
        # A static table wraps on a phone instead of hiding columns behind a sideways scroll.
        st.table(table, hide_index=True)
        st.caption(_("{count} parameters in all.").format(count=format_number(int(table[_("parameters")].sum()))))
    if dataset is None:
        return None
    try:
        return TrainingSettings(
            dataset=dataset_name,
            arch=arch,
            model_config=config if arch == CUSTOM else None,
            target_accuracy=target if stop_at_target else None,
            monitor=monitor,
            check_every_batches=int(check_every),
            max_epochs=int(max_epochs),
            batch_size=int(batch_size),
            learning_rate=float(learning_rate),
            validation_split=float(validation_split),
            normalization=normalization,
            train_size=train_size or None,
        )
    except ValueError as problem:
        st.error(str(problem))
        return None
