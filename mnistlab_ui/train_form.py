"""The Train page's form: dataset, architecture (a preset or your own) and how to train it.

Every widget comes from the settings table (`mnistlab.settings.SETTINGS`: label,
range or options, help), so the form, the links and the command line agree. Each
widget has a key, seeded once per session from the settings to start with (the run
being viewed after a reload, or a lesson's link), so a reload keeps the form. Every
widget is drawn on every run, also while one value is wrong: Streamlit forgets a
widget that a run does not draw, so hiding the column while the "Dense layers" box
held a typo used to reset every other setting. Changing the dataset or the preset puts
that preset's recipe (epochs, batch size, learning rate) into the form.

`choose_settings` returns checked `TrainingSettings`, or None after showing, next to
the form, why they are impossible. The layer table and the network's size come from
`mnistlab.sizing`: nothing is built in the web server to describe a network.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
import streamlit as st

from mnistlab.datasets import DATASETS, NORMALIZATIONS
from mnistlab.glossary import explain
from mnistlab.i18n import _, decimal, percent
from mnistlab.i18n import number as format_number
from mnistlab.models import PRESETS, ConvBlock, ModelConfig, get_preset
from mnistlab.settings import CUSTOM, CUSTOM_RECIPE, MONITORS, SETTING, Setting, TrainingSettings
from mnistlab.sizing import layer_sizes
from mnistlab_ui.data import dataset_or_error
from mnistlab_ui.session import TRAIN_FORM, TRAIN_FORM_AWAY
from mnistlab_ui.text import plain

ALL = 0  # a select box's value for "all" (Streamlit shows None as no choice)
FILTERS = (8, 16, 32, 64, 128)
KERNEL_SIZES = (3, 5)
MAX_BLOCKS = 3
TARGETS = tuple(round(0.1 + 0.005 * step, 3) for step in range(181))  # 10% to 100% in steps of 0.5%
SPLITS = tuple(round(0.05 * step, 2) for step in range(11))  # 0% to 50%


def key(name: str) -> str:
    """The widget key of a setting (or of a part of the "build your own" form)."""
    return f"train.{name}"


STOP_AT_TARGET = key("stop_at_target")
MORE_OPEN = key("more_settings_open")  # an opened "More settings" stays open through the reruns its choices cause
NETWORK_PARTS = ("blocks", "units", "dropout", "batch_norm", "augmentation", "mirror")


def _to_widget(setting: Setting, value):
    if setting.kind == "size":
        return ALL if value is None else value
    return value


def _from_widget(setting: Setting, value):
    if setting.kind == "size":
        return None if value == ALL else int(value)
    return value


def _recipe_values(dataset: str, arch: str) -> dict:
    """The epochs, batch size and learning rate of a preset's recipe for a dataset's size."""
    if arch == CUSTOM:
        recipe = CUSTOM_RECIPE
    else:
        dataset_info, _error = dataset_or_error(dataset)
        size = len(dataset_info.y_train) if dataset_info is not None else DATASETS[dataset].published_train_size
        recipe = get_preset(arch).recipe.for_size(size)
    return {key("max_epochs"): recipe.max_epochs, key("batch_size"): recipe.batch_size, key("learning_rate"): recipe.learning_rate}


def _apply_recipe() -> None:
    st.session_state.update(_recipe_values(st.session_state[key("dataset")], st.session_state[key("arch")]))


SHOWN_ARCH = "train_form.shown_arch"  # the architecture the form showed last (not a widget): what "Build your own" starts from


def _arch_changed() -> None:
    """Another preset brings its recipe; "Build your own" starts from the network the form showed, with every other
    setting as it was (a student who only meant to change the hidden size got a CNN with another batch and epochs)."""
    arch = st.session_state[key("arch")]
    if arch != CUSTOM:
        _apply_recipe()
        st.session_state[key("units")] = _units_text(get_preset(arch).config.dense_units)
        return
    shown = st.session_state.get(SHOWN_ARCH)
    if shown in PRESETS:
        values = _network_values(get_preset(shown).config_for(st.session_state[key("dataset")]))
        try:  # the hidden units the student set on the preset stay
            dense_units(st.session_state.get(key("units"), ""))
            del values[key("units")]
        except ValueError:
            pass
        st.session_state.update(values)


def _units_text(units: tuple[int, ...]) -> str:
    return ", ".join(map(str, units))


def _network_values(config: ModelConfig) -> dict:
    values = {
        key("blocks"): min(MAX_BLOCKS, len(config.conv_blocks)),
        key("units"): _units_text(config.dense_units),
        key("dropout"): config.dropout,
        key("batch_norm"): config.batch_norm,
        key("augmentation"): config.augmentation,
        key("mirror"): config.mirror,
    }
    for number, block in enumerate(config.conv_blocks[:MAX_BLOCKS], start=1):
        values[key(f"block{number}.filters")] = block.filters
        values[key(f"block{number}.kernel")] = block.kernel_size
        values[key(f"block{number}.pool")] = block.pool
    return values


def form_values(settings: TrainingSettings) -> dict:
    """The form's widget values that show `settings`."""
    values = {key(setting.name): _to_widget(setting, getattr(settings, setting.name)) for setting in SETTING.values() if setting.widget}
    values[STOP_AT_TARGET] = settings.target_accuracy is not None
    values[key("target_accuracy")] = settings.target_accuracy or DATASETS[settings.dataset].suggested_target
    values.update(_recipe_values(settings.dataset, settings.arch))
    for name in ("max_epochs", "batch_size", "learning_rate"):
        if getattr(settings, name) is not None:
            values[key(name)] = getattr(settings, name)
    if settings.arch == CUSTOM and settings.model_config is not None:
        values.update(_network_values(settings.model_config))
    else:
        values[key("units")] = _units_text(settings.config.dense_units)
    return values


def seed(settings: TrainingSettings, replace: bool = False) -> None:
    """Fill the form: with what this session last had in it, else from `settings`; with `replace`, from `settings`.

    Streamlit forgets a widget's value when a page without it runs (a visit to the Draw
    page), so the form's values are also kept in session state and put back here. A
    link's settings replace whatever the form had.
    """
    remembered = TRAIN_FORM.get()
    if remembered and not replace:
        for name, value in remembered.items():
            st.session_state.setdefault(name, value)
        return
    for name, value in form_values(settings).items():
        if replace:
            st.session_state[name] = value
        else:
            st.session_state.setdefault(name, value)
    if replace:
        remember()


def remember() -> None:
    """Keep the form's current values for the next visit of the page."""
    TRAIN_FORM.set({name: value for name, value in st.session_state.items() if isinstance(name, str) and name.startswith("train.")})


def _default(name: str, value) -> str:
    """Give a widget its first value through session state (never twice), and return its key."""
    st.session_state.setdefault(name, value)
    return name


def dense_units(text: str) -> tuple[int, ...]:
    """The "Dense layers" box's text as units; a ValueError says what to type."""
    parts = [part for part in text.replace(";", ",").replace(" ", ",").split(",") if part]
    if not all(part.isdigit() for part in parts):
        raise ValueError(
            _("Dense layers are whole numbers of units separated by commas, such as 128 or 256, 128; {text} is not.").format(
                text=repr(text.strip()[:30])
            )
        )
    return tuple(int(part) for part in parts)


def custom_network() -> tuple[ModelConfig | None, str | None]:
    """The "build your own" form: the network, or None and what is wrong (every widget is drawn either way)."""
    blocks = []
    block_count = st.slider(
        _("Convolution blocks"),
        0,
        MAX_BLOCKS,
        key=_default(key("blocks"), 1),
        help=_("Each block is a Conv2D layer, optionally followed by 2x2 max pooling."),
    )
    for number in range(1, block_count + 1):
        st.caption(_("Block {number}").format(number=number))
        left, middle, right = st.columns(3)
        filters = left.selectbox(
            _("Filters"),
            FILTERS,
            key=_default(key(f"block{number}.filters"), FILTERS[2 + min(number - 1, 2)]),
            help=_("How many different patterns this layer learns to detect."),
        )
        kernel = middle.selectbox(
            _("Kernel size"), KERNEL_SIZES, key=_default(key(f"block{number}.kernel"), 3), help=_("The size of each filter, in pixels.")
        )
        pool = right.checkbox(_("Max pooling"), key=_default(key(f"block{number}.pool"), True), help=explain("max_pooling"))
        blocks.append(ConvBlock(int(filters), int(kernel), bool(pool)))
    units_text = _units_input("128")
    dropout = st.select_slider(
        _("Dropout"),
        options=SPLITS[:15],
        key=_default(key("dropout"), 0.0),
        format_func=lambda value: percent(value, 0),
        help=explain("dropout"),
    )
    batch_norm = st.checkbox(
        _("Batch normalisation"),
        key=_default(key("batch_norm"), False),
        help=explain("batch_normalisation"),
    )
    augmentation = st.checkbox(
        _("Augment: rotate, shift and zoom a little"),
        key=_default(key("augmentation"), False),
        help=explain("augmentation"),
    )
    mirror = st.checkbox(
        _("Augment: mirror left-right"),
        key=_default(key("mirror"), False),
        help=_("Good for clothes (a mirrored shoe is still a shoe), wrong for digits (a mirrored 2 is not a 2)."),
    )
    try:
        units = dense_units(units_text)
        return ModelConfig(
            conv_blocks=tuple(blocks), dense_units=units, dropout=float(dropout), batch_norm=batch_norm, augmentation=augmentation, mirror=mirror
        ), None
    except ValueError as problem:
        return None, str(problem)


def _units_input(first: str) -> str:
    """The "Dense layers" box, the same on a preset and on a network of your own (one key: what a student typed on a
    preset is where "Build your own" starts)."""
    return st.text_input(
        _("Dense layers (units, comma separated)"),
        key=_default(key("units"), first),
        help=explain("dense") + " " + _("For example '128' or '256, 128'."),
    )


def preset_network(preset_name: str, dataset: str) -> tuple[ModelConfig, bool, str | None]:
    """A preset's network with the hidden units the student set (the preset's own to start with): the network, whether
    it is the preset's own, and what is wrong with the units typed (the preset's network is returned then)."""
    preset = get_preset(preset_name).config_for(dataset)
    if not preset.dense_units:
        return preset, True, None
    text = _units_input(_units_text(preset.dense_units))
    try:
        config = replace(preset, dense_units=dense_units(text))
    except ValueError as problem:
        return preset, True, str(problem)
    if config.dense_units == preset.dense_units:
        return preset, True, None
    st.caption(_("Your own version of this network: the other settings stay as they are."))
    return config, False, None


def layer_table(config: ModelConfig) -> pd.DataFrame:
    """The layers of a network, worked out from its description (nothing is built)."""
    rows = layer_sizes(config)
    return pd.DataFrame(
        {
            _("layer"): [row.name for row in rows],
            _("kind"): [row.kind for row in rows],
            _("output shape"): [row.shape_text for row in rows],
            _("parameters"): [format_number(row.parameters) for row in rows],
        }
    )


def _format(setting: Setting):
    """How a widget shows each of its options, in the page's language."""
    if setting.name == "dataset":
        return lambda name: _(DATASETS[name].title)
    if setting.name == "arch":
        return lambda name: _("Build your own") if name == CUSTOM else _(PRESETS[name].title)
    if setting.name == "monitor":
        return lambda name: _(MONITORS[name]).capitalize()
    if setting.name == "normalization":
        return lambda name: _("÷ 255 (0 to 1)") if name == "divide_255" else _("keras.utils.normalize (each column to length 1)")
    if setting.name == "learning_rate":
        return decimal
    if setting.name == "train_size":
        return lambda size: _("all") if size == ALL else format_number(size)
    if setting.kind in ("target", "float"):
        return lambda value: percent(value, 1)
    return lambda value: format_number(value) if isinstance(value, (int, float)) else str(value)


def _with_value(options: tuple, value) -> list:
    return sorted({*options, value}) if isinstance(value, (int, float)) and value not in options else list(options)


def setting_widget(name: str, container=st, on_change=None, disabled: bool = False):
    """The widget of one setting of the table, drawn in `container`; returns its value (as the settings take it)."""
    setting = SETTING[name]
    widget_key = key(name)
    label, help_text = _(setting.label), setting.help_text() or None
    if setting.widget == "selectbox":
        options = setting.form_options(st.session_state.get(widget_key))
        options = [_to_widget(setting, option) for option in options]
        value = container.selectbox(label, options, key=widget_key, on_change=on_change, format_func=_format(setting), help=help_text)
    elif setting.widget == "radio":
        value = container.radio(label, list(setting.choices), key=widget_key, format_func=_format(setting), horizontal=True, help=help_text)
    elif setting.widget == "number":
        value = container.number_input(
            label, int(setting.low), int(setting.high), step=int(setting.step or 1), key=widget_key, help=help_text, disabled=disabled
        )
    elif setting.widget in ("slider", "target"):
        # A link or a run may have chosen a value between the slider's steps: it is offered too.
        options = _with_value(TARGETS if setting.widget == "target" else SPLITS, st.session_state.get(widget_key))
        value = container.select_slider(label, options=options, key=widget_key, format_func=_format(setting), help=help_text, disabled=disabled)
    else:
        raise ValueError(f"The setting {name} has no widget.")
    return _from_widget(setting, value)


@dataclass(frozen=True)
class ChosenSettings:
    """What the form chose (None, with a message, when it is impossible) and the place in the form for the page's
    Train button: next to the settings, on a projector's first screen."""

    settings: TrainingSettings | None
    actions: object  # a Streamlit container


def choose_settings() -> ChosenSettings:
    """Dataset, architecture and training settings, and where the Train button goes."""
    if TRAIN_FORM_AWAY.get():
        # The form was not drawn while a run trained: Streamlit kept its values, but the browser forgot them and
        # would show each widget's first value. Setting them again sends them to the browser.
        for name, value in TRAIN_FORM.get().items():
            st.session_state[name] = value
        TRAIN_FORM_AWAY.set(False)
    try:
        return _form()
    finally:
        remember()


def step_aside() -> None:
    """The page does not draw the form in this run (a run is training); `choose_settings` brings its values back."""
    TRAIN_FORM_AWAY.set(True)


def _form() -> ChosenSettings:
    problems: list[str] = []
    left, right = st.columns(2)
    with left:
        dataset_name = setting_widget("dataset", on_change=_apply_recipe)
        dataset, error = dataset_or_error(dataset_name)
        if dataset is None:
            st.error(plain(error))
            problems.append(error)
        else:
            sample = _(" (a sample; the Home page says how to get the full set)") if dataset.source.is_sample else ""
            st.caption(
                _("{train} training images, {test} test images{sample}.").format(
                    train=format_number(len(dataset.y_train)), test=format_number(len(dataset.y_test)), sample=sample
                )
            )
        arch = setting_widget("arch", on_change=_arch_changed)
        st.session_state[SHOWN_ARCH] = arch
        if arch == CUSTOM:
            config, problem = custom_network()
            if problem:
                st.error(plain(problem))
                problems.append(problem)
        else:
            st.info(_(get_preset(arch).explanation))
            config, own, problem = preset_network(arch, dataset_name)
            if problem:
                st.error(plain(problem))
                problems.append(problem)
            elif not own:
                arch = CUSTOM  # a preset with other hidden units is a network of the student's own
    with right:
        stop_at_target = st.checkbox(_("Stop at a target accuracy"), key=STOP_AT_TARGET, help=explain("callback"))
        target = setting_widget("target_accuracy", disabled=not stop_at_target)
        monitor = setting_widget("monitor")
        columns = st.columns(3)
        max_epochs = setting_widget("max_epochs", columns[0])
        batch_size = setting_widget("batch_size", columns[1])
        learning_rate = setting_widget("learning_rate", columns[2])
        actions = st.container()
        with st.expander(_("More settings"), key=MORE_OPEN, on_change="rerun"):
            more = {setting.name: setting_widget(setting.name) for setting in SETTING.values() if setting.widget and setting.section == "more"}
            st.caption(" ".join(_(text) for text in NORMALIZATIONS.values()))
    if config is not None:
        with st.expander(_("Layers, output shapes and parameters"), expanded=st.session_state[SHOWN_ARCH] != CUSTOM):
            st.caption(
                explain("flatten")
                + " "
                + explain("dense")
                + " "
                + _("In an output shape, batch stands for however many images the network takes at once.")
            )
            # A static table wraps on a phone instead of hiding columns behind a sideways scroll.
            st.table(layer_table(config), hide_index=True)
    if problems:
        return ChosenSettings(None, actions)
    try:
        settings = TrainingSettings(
            dataset=dataset_name,
            arch=arch,
            model_config=config if arch == CUSTOM else None,
            target_accuracy=target if stop_at_target else None,
            monitor=monitor,
            max_epochs=int(max_epochs),
            batch_size=int(batch_size),
            learning_rate=float(learning_rate),
            **more,
        )
    except ValueError as problem:
        st.error(plain(problem))
        return ChosenSettings(None, actions)
    code_view(settings)
    return ChosenSettings(settings, actions)


def code_view(settings: TrainingSettings) -> None:
    """The plain Keras code of the network and its training, as the lessons write it (it follows the settings)."""
    from mnistlab.export import keras_code

    with st.expander(_("The Keras code of this network and its training")):
        st.caption(
            _(
                "Plain Keras, as in the lessons: copy it (the button at the top right of the code) into Colab or Jupyter, "
                "or download a run's notebook below its results."
            )
        )
        st.code(keras_code(settings), language="python", line_numbers=False, wrap_lines=True)
