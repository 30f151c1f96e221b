"""Training settings: one table says what each setting is, and everything else reads it.

`SETTINGS` has one `Setting` per field of `TrainingSettings`: its type, its range or
choices, the key it has in a Train page link, the flag it has on the command line, the
widget the Train page shows for it, its label and its help. `TrainingSettings` checks
its values against the table when it is made; `mnistlab.links` reads and writes links
through it, `mnistlab.cli` makes its flags from it, and the Train page's form builds
its widgets from it. So a range is written once, and a link, the form and the command
line always agree (as tensorflow/playground's `State.PROPS` drives its URL both ways).

Every check raises a `ValueError` in words a student understands. Unset numbers
(None) take the preset's recipe; `recipe_for` gives the recipe a run actually uses.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace

from mnistlab.datasets import DATASETS, NORMALIZATIONS, OWN_IMAGES
from mnistlab.i18n import N_, _, decimal, number
from mnistlab.models import PRESETS, ConvBlock, ModelConfig, Recipe, get_preset, network_text, parse_network

MONITORS = {
    "accuracy": N_("training accuracy"),
    "val_accuracy": N_("validation accuracy"),
}
CUSTOM = "custom"  # the architecture of a network built on the "build your own" form
# The recipe of a network built on the "build your own" form.
CUSTOM_RECIPE = Recipe(batch_size=128, learning_rate=0.001, max_epochs=5)
MAX_TEXT = 200  # longest value a link or the command line may give a setting


@dataclass(frozen=True)
class Setting:
    """One training setting: the field it fills, how it is checked, and where it appears."""

    name: str  # the TrainingSettings field
    label: str  # marked with N_(), translated where shown
    kind: str  # "choice", "int", "float", "target", "network", "size" or "text"
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()  # the values a "choice" takes
    options: tuple = ()  # what the form offers to pick from (within the range)
    optional: bool = False  # None is allowed: the preset's recipe decides
    link_key: str | None = None  # its key in a Train page link (None: not in links)
    cli_flag: str | None = None  # its flag on the command line (None: not there)
    widget: str | None = None  # "selectbox", "radio", "slider", "number", "target" (None: not a widget of its own)
    section: str = "main"  # where the form shows it: "main", or "more" (the "More settings" expander)
    help: str = ""  # a glossary key ("glossary:epoch") or a help text marked with N_()
    step: float | None = None  # a slider's or a number box's step
    above_low: bool = False  # the value must be above `low`, not equal to it
    also_valid: tuple[str, ...] = ()  # values a "choice" accepts that forms and links do not offer

    # Checking a value (a TrainingSettings field)

    def check(self, value):
        """The value if it is allowed, else a ValueError that says what is."""
        if value is None:
            if self.optional:
                return None
            raise ValueError(_("{setting} needs a value.").format(setting=_(self.label)))
        if self.kind == "choice":
            if value not in self.choices and value not in self.also_valid:
                raise self._not_a_choice(value)
            return value
        if self.kind == "network":
            if not isinstance(value, ModelConfig):
                raise ValueError(_("{setting} must describe a network.").format(setting=_(self.label)))
            return value
        if self.kind == "text":
            if not isinstance(value, str) or not value.strip() or len(value) > 4096:
                raise ValueError(_("{setting} must be a folder's name.").format(setting=_(self.label)))
            return value
        return self._check_number(value)

    def _not_a_choice(self, value) -> ValueError:
        return ValueError(
            _("{setting} must be one of: {choices} (not {value}).").format(
                setting=_(self.label), choices=", ".join(self.choices), value=_shown(value)
            )
        )

    def _check_number(self, value):
        whole = self.kind in ("int", "size")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not float(value).is_integer()):
            kind = _("a whole number") if whole else _("a number")
            raise ValueError(_("{setting} must be {kind}, not {value}.").format(setting=_(self.label), kind=kind, value=_shown(value)))
        if not math.isfinite(value):
            raise ValueError(_("{setting} must be a number, not {value}.").format(setting=_(self.label), value=_shown(value)))
        value = int(value) if whole else float(value)
        too_low = self.low is not None and (value <= self.low if self.above_low else value < self.low)
        if too_low or (self.high is not None and value > self.high):
            if self.kind == "target":
                message = _("The target accuracy is a fraction from {low} to {high} (0.9 means 90%), not {value}.")
            elif self.above_low:
                message = _("{setting} must be above {low} and at most {high}, not {value}.")
            else:
                message = _("{setting} must be from {low} to {high}, not {value}.")
            raise ValueError(message.format(setting=_(self.label), low=self._bound(self.low), high=self._bound(self.high), value=_shown(value)))
        return value

    # Text: links and the command line

    def parse(self, text: str):
        """The value a link or the command line writes as `text`; a ValueError says what is allowed."""
        text = str(text).strip()
        if len(text) > MAX_TEXT:
            raise ValueError(_("{setting} is too long.").format(setting=_(self.label)))
        lowered = text.lower()
        if self.optional and lowered in ("", "off", "none", "no", "all", "default"):
            return None
        if self.kind == "choice":
            if text not in self.choices:  # a link or a flag picks among what is offered
                raise self._not_a_choice(text)
            return text
        if self.kind == "network":
            return parse_network(text)
        if self.kind == "text":
            return self.check(text)
        number = _read_number(text, percent=self.kind == "target")
        if number is None:
            kind = _("a whole number") if self.kind in ("int", "size") else _("a number")
            raise ValueError(_("{setting} must be {kind}, not {value}.").format(setting=_(self.label), kind=kind, value=_shown(text)))
        return self.check(number)

    def write(self, value) -> str:
        """`value` as a link or the command line writes it (`parse` reads it back)."""
        if value is None:
            return "off" if self.kind == "target" else "all" if self.kind == "size" else "default"
        if self.kind == "network":
            return network_text(value)
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)

    def _bound(self, value) -> str:
        return number(value) if self.kind in ("int", "size") else decimal(value)

    def range_text(self) -> str:
        """The allowed values in words: "1 to 200", "above 0, at most 1", "one of: a, b"."""
        if self.kind == "choice":
            return ", ".join(self.choices)
        low, high = self._bound(self.low), self._bound(self.high)
        return (_("above {low}, at most {high}") if self.above_low else _("{low} to {high}")).format(low=low, high=high)

    # The form

    def help_text(self) -> str:
        """The widget's help, in the current language."""
        if self.help.startswith("glossary:"):
            from mnistlab.glossary import explain

            return explain(self.help.removeprefix("glossary:"))
        return _(self.help) if self.help else ""

    def form_options(self, current=None) -> list:
        """The form's options, with the current value added when a link or a run chose one that is not among them."""
        options = list(self.choices if self.kind == "choice" else self.options)
        if current is not None and current not in options:
            options = sorted([*options, current], key=lambda option: (option is None, option if option is not None else 0))
        return options


def _shown(value) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 40 else text[:40] + "…"


def _read_number(text: str, percent: bool = False) -> float | None:
    """A number from text ("0.9", "90%" when `percent`, "1e-3"), or None when it is not one."""
    scale = 1.0
    if percent and text.endswith("%"):
        text, scale = text[:-1].strip(), 0.01
    try:
        value = float(text.replace(",", ".")) if text.count(",") == 1 and "." not in text else float(text)
    except ValueError:
        return None
    return value * scale if math.isfinite(value) else None


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "dataset",
        N_("Dataset"),
        "choice",
        choices=tuple(DATASETS),
        link_key="dataset",
        cli_flag="--dataset",
        widget="selectbox",
        also_valid=(OWN_IMAGES,),  # given with its images (`train --images`), never by name
    ),
    Setting("arch", N_("Architecture"), "choice", choices=(*PRESETS, CUSTOM), link_key="preset", cli_flag="--arch", widget="selectbox"),
    Setting("model_config", N_("Network"), "network", optional=True, link_key="network", cli_flag="--network"),
    Setting(
        "target_accuracy",
        N_("Target accuracy"),
        "target",
        low=0.1,
        high=1.0,
        optional=True,
        link_key="target",
        cli_flag="--target-accuracy",
        widget="target",
        step=0.005,
        help="glossary:accuracy",
    ),
    Setting(
        "monitor",
        N_("Watch"),
        "choice",
        choices=tuple(MONITORS),
        link_key="monitor",
        cli_flag="--monitor",
        widget="radio",
        help=N_("Which accuracy the target watches. Validation accuracy is measured on images the network does not train on: a fairer test."),
    ),
    Setting(
        "max_epochs",
        N_("Max epochs"),
        "int",
        low=1,
        high=200,
        optional=True,
        link_key="epochs",
        cli_flag="--max-epochs",
        widget="number",
        help="glossary:epoch",
    ),
    Setting(
        "batch_size",
        N_("Batch size"),
        "int",
        low=1,
        high=1024,
        optional=True,
        options=(16, 32, 64, 128, 256, 512),
        link_key="batch",
        cli_flag="--batch-size",
        widget="selectbox",
        help="glossary:batch",
    ),
    Setting(
        "learning_rate",
        N_("Learning rate"),
        "float",
        low=0.0,
        high=1.0,
        above_low=True,
        optional=True,
        options=(0.0001, 0.0003, 0.001, 0.002, 0.003, 0.004, 0.006, 0.008, 0.01),
        link_key="lr",
        cli_flag="--learning-rate",
        widget="selectbox",
        help="glossary:learning_rate",
    ),
    Setting(
        "check_every_batches",
        N_("Check the target every N batches"),
        "int",
        low=0,
        high=10_000,
        link_key="check",
        cli_flag="--check-every",
        widget="number",
        section="more",
        step=50,
        help=N_(
            "0 checks the target only at the end of each epoch. A number N also checks it every N batches during an epoch, "
            "so training stops sooner; with validation accuracy each check costs a little time."
        ),
    ),
    Setting(
        "validation_split",
        N_("Validation split"),
        "float",
        low=0.0,
        high=0.5,
        link_key="validation",
        cli_flag="--validation-split",
        widget="slider",
        section="more",
        step=0.05,
        help="glossary:validation",
    ),
    Setting(
        "normalization",
        N_("Normalisation"),
        "choice",
        choices=tuple(NORMALIZATIONS),
        link_key="normalization",
        cli_flag="--normalization",
        widget="radio",
        section="more",
        help="glossary:normalisation",
    ),
    Setting(
        "train_size",
        N_("Training images"),
        "size",
        low=10,
        high=1_000_000,
        optional=True,
        options=(None, 10_000, 5_000, 1_000),
        link_key="images",
        cli_flag="--train-size",
        widget="selectbox",
        section="more",
        help=N_("Train on a balanced part of the training images: fewer images train faster, for a quick try."),
    ),
    Setting(
        "seed",
        N_("Seed"),
        "int",
        low=0,
        high=2**31 - 1,
        link_key="seed",
        cli_flag="--seed",
        widget="number",
        section="more",
        help="glossary:seed",
    ),
    Setting("test_size", N_("Test images"), "size", low=10, high=1_000_000, optional=True, cli_flag="--test-size"),
    Setting("data_dir", N_("Data folder"), "text", optional=True, cli_flag="--data-dir"),
)
SETTING = {setting.name: setting for setting in SETTINGS}
LINK_SETTINGS = {setting.link_key: setting for setting in SETTINGS if setting.link_key}


@dataclass(frozen=True)
class TrainingSettings:
    """What to train and how. Unset numbers (None) take the preset's recipe."""

    dataset: str = "mnist"
    arch: str = "dense"  # a preset name, or "custom" with model_config
    model_config: ModelConfig | None = None
    target_accuracy: float | None = 0.99
    monitor: str = "val_accuracy"
    check_every_batches: int = 0  # 0: check the target only at the end of each epoch
    max_epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    validation_split: float = 0.1
    normalization: str = "divide_255"
    seed: int = 42
    train_size: int | None = None  # train on a balanced subset (quick runs, tests)
    test_size: int | None = None
    data_dir: str | None = None

    def __post_init__(self) -> None:
        for setting in SETTINGS:
            object.__setattr__(self, setting.name, setting.check(getattr(self, setting.name)))
        if self.arch == CUSTOM and self.model_config is None:
            raise ValueError(_("A network you build yourself needs its layers."))
        if self.arch != CUSTOM and self.model_config is not None:
            object.__setattr__(self, "model_config", None)  # a preset's network is the preset's
        if self.monitor == "val_accuracy" and self.validation_split == 0.0:
            raise ValueError(_("Watching validation accuracy needs some validation data: set a validation split above 0."))

    @property
    def base_recipe(self) -> Recipe:
        return CUSTOM_RECIPE if self.arch == CUSTOM else get_preset(self.arch).recipe

    def recipe_for(self, train_images: int) -> Recipe:
        """The preset's recipe for a training set of this size, with this run's overrides applied."""
        base = self.base_recipe.for_size(train_images)
        return replace(
            base,
            batch_size=self.batch_size or base.batch_size,
            learning_rate=self.learning_rate or base.learning_rate,
            max_epochs=self.max_epochs or base.max_epochs,
            small_data=None,
        )

    @property
    def config(self) -> ModelConfig:
        if self.arch == CUSTOM:
            return self.model_config  # type: ignore[return-value]
        return get_preset(self.arch).config_for(self.dataset)

    def to_dict(self) -> dict:
        """Plain JSON-ready values (the runs database stores settings this way)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainingSettings:
        """The settings `to_dict` wrote; unknown keys are ignored, so older records still load.

        A record is history, not a new choice: one written under older limits (an older version allowed 1000
        epochs) is read as it is, unchecked, rather than refused.
        """
        known = {field.name for field in fields(cls)}
        values = {key: value for key, value in values.items() if key in known}
        config = values.get("model_config")
        if isinstance(config, dict):
            blocks = tuple(ConvBlock(**block) for block in config.get("conv_blocks", ()))
            config_fields = {field.name for field in fields(ModelConfig)}
            values["model_config"] = ModelConfig(
                **{
                    **{key: value for key, value in config.items() if key in config_fields},
                    "conv_blocks": blocks,
                    "dense_units": tuple(config.get("dense_units", (128,))),
                }
            )
        try:
            return cls(**values)
        except ValueError:
            record = object.__new__(cls)
            for field in fields(cls):
                object.__setattr__(record, field.name, values.get(field.name, field.default))
            return record


# What the Train page shows first: the lessons' first network, with a target it reaches on this server's data.
DEFAULT_SETTINGS = TrainingSettings(dataset="mnist", arch="dense", target_accuracy=DATASETS["mnist"].suggested_target)


def settings_from_texts(texts: Mapping[str, str | None], base: TrainingSettings | None = None) -> TrainingSettings:
    """Settings from text values by field name (the command line's flags); fields not given come from `base`."""
    values = (base or TrainingSettings()).to_dict()
    values["model_config"] = (base or TrainingSettings()).model_config
    for name, text in texts.items():
        if text is not None:
            values[name] = SETTING[name].parse(text)
    if values.get("model_config") is not None and "arch" not in {name for name, text in texts.items() if text is not None}:
        values["arch"] = CUSTOM
    return TrainingSettings(**values)


def settings_from_link(values: Mapping, base: TrainingSettings | None = None) -> TrainingSettings:
    """Settings from a checked link's values (by link key); the rest from `base`. A link without a target
    gets the dataset's suggested one; a link naming a network builds it ("build your own")."""
    base = base or TrainingSettings()
    chosen = {LINK_SETTINGS[key].name: value for key, value in values.items() if key in LINK_SETTINGS}
    merged = {**base.to_dict(), "model_config": base.model_config, **chosen}
    if "model_config" in chosen and chosen["model_config"] is not None:
        merged["arch"] = CUSTOM
    elif merged["arch"] == CUSTOM and merged["model_config"] is None:
        merged["arch"] = "dense"
    if "target_accuracy" not in chosen and base.target_accuracy is None:
        merged["target_accuracy"] = DATASETS[merged["dataset"]].suggested_target
    # A link's numbers that it does not name come from the preset's recipe, not from another run.
    for name in ("max_epochs", "batch_size", "learning_rate"):
        merged.setdefault(name, None)
        if name not in chosen:
            merged[name] = None
    return TrainingSettings(**merged)


def link_of(settings: TrainingSettings, language: str | None = None) -> dict[str, str]:
    """The query of a link that opens the Train page with these settings (`settings_from_link` reads it back)."""
    defaults = TrainingSettings()
    query: dict[str, str] = {}
    for setting in SETTINGS:
        if not setting.link_key:
            continue
        value = getattr(settings, setting.name)
        always = setting.name in ("dataset", "arch", "target_accuracy")
        if always or (value is not None and value != getattr(defaults, setting.name)):
            query[setting.link_key] = setting.write(value)
    if language and language != "en":
        query["lang"] = language
    return query


def quick_model_settings(dataset: str) -> TrainingSettings:
    """The one seeded recipe of a page's "quick model" for `dataset`: the fast CNN, no target, its own epochs."""
    return TrainingSettings(dataset=dataset, arch="fast_cnn", target_accuracy=None, seed=42)


def recipe_key(settings: TrainingSettings) -> str:
    """A short key that is the same for the same settings: runs everyone shares are found by it."""
    text = json.dumps(settings.to_dict(), sort_keys=True, default=str)
    return f"{settings.dataset}:{settings.arch}:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def widget_settings(section: str) -> list[Setting]:
    """The settings the Train page's form shows in `section`, in the table's order."""
    return [setting for setting in SETTINGS if setting.widget and setting.section == section]
