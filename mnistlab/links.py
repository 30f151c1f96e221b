"""Settings in a link: the query part of a page's URL (`/train?dataset=fashion_mnist&preset=dense&target=0.88`).

A teacher shares a page with its settings chosen as a link; the lessons on the Home
page are such links. `read_link` checks every value and returns what it can use and a
note for each key or value it cannot (an unknown key, a bad or very long value): a link
never breaks a page, it falls back to the default and says so. `train_link` writes the
query of a set of training settings, so "Copy link to these settings" and `read_link`
go round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mnistlab.convolutions import KERNELS
from mnistlab.datasets import DATASETS
from mnistlab.i18n import LANGUAGES, _
from mnistlab.models import PRESETS
from mnistlab.settings import MONITORS, TrainingSettings

MAX_VALUE_LENGTH = 40  # longer values are refused (and shortened in the note)
TRAIN_IMAGES = {"all": None, "10000": 10_000, "5000": 5_000, "1000": 1_000}
# Keys every page accepts: the language, and the keys of other pages' links (a class's join code, a teacher link).
COMMON_KEYS = {"lang", "join", "class", "teacher"}


@dataclass(frozen=True)
class LinkSettings:
    """What a link asks for, checked: the values to use, and a note for everything left out."""

    values: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _number(text: str, kind=float):
    value = kind(text.strip().removesuffix("%")) if kind is float else kind(text.strip())
    if kind is float and text.strip().endswith("%"):
        value /= 100
    return value


def _check_target(text: str):
    if text.strip().lower() in ("off", "none", "no"):
        return None
    value = _number(text)
    if not 0 < value <= 1:
        raise ValueError(_("a target accuracy is between 0 and 1 (0.9 or 90%), or off"))
    return value


def _check_range(low, high, kind):
    def check(text: str):
        value = _number(text, kind)
        if not low <= value <= high:
            raise ValueError(_("it must be from {low} to {high}").format(low=low, high=high))
        return value

    return check


def _check_choice(choices):
    def check(text: str):
        if text not in choices:
            raise ValueError(_("it must be one of: {choices}").format(choices=", ".join(choices)))
        return choices[text] if isinstance(choices, dict) and choices is TRAIN_IMAGES else text

    return check


PAGE_KEYS = {
    "train": {
        "dataset": _check_choice(list(DATASETS)),
        "preset": _check_choice(list(PRESETS)),
        "target": _check_target,
        "epochs": _check_range(1, 200, int),
        "batch": _check_range(1, 1024, int),
        "lr": _check_range(0.00001, 1.0, float),
        "monitor": _check_choice(list(MONITORS)),
        "images": _check_choice(TRAIN_IMAGES),
    },
    "convolutions": {
        "kernel": _check_choice(list(KERNELS)),
        "dataset": _check_choice(list(DATASETS)),
        "image": _check_range(0, 100_000, int),
    },
    "draw": {},
    "class": {},
    "glossary": {},
    "home": {},
}


def _shown(value: str) -> str:
    return value if len(value) <= MAX_VALUE_LENGTH else value[:MAX_VALUE_LENGTH] + "…"


def read_link(page: str, query: Mapping[str, str]) -> LinkSettings:
    """Check the link's query for `page`; never raises for what a user could type into an address bar."""
    checks = PAGE_KEYS.get(page, {})
    values: dict = {}
    notes: list[str] = []
    for key, raw in query.items():
        text = str(raw)
        if key in COMMON_KEYS:
            continue
        if key not in checks:
            notes.append(_("The link's setting {key!r} is not one this page knows, so it was left out.").format(key=_shown(str(key))))
            continue
        if len(text) > MAX_VALUE_LENGTH:
            notes.append(_("The link's value for {key!r} is too long, so the default is used.").format(key=key))
            continue
        try:
            values[key] = checks[key](text)
        except (ValueError, TypeError, OverflowError) as problem:
            reason = str(problem) if isinstance(problem, ValueError) and str(problem) and " " in str(problem) else _("not a valid value")
            notes.append(
                _("The link's value {value!r} for {key!r} cannot be used ({reason}), so the default is used.").format(
                    value=_shown(text), key=key, reason=reason
                )
            )
    return LinkSettings(values, tuple(notes))


def language_of(query: Mapping[str, str]) -> str | None:
    """The language a link asks for (`lang=tr`), if it is one of the app's."""
    language = str(query.get("lang", "")).strip().lower()
    return language if language in LANGUAGES else None


def train_settings(values: Mapping, base: TrainingSettings | None = None) -> TrainingSettings:
    """Training settings from a checked link's values, the rest from `base` (a preset's recipe fills the gaps)."""
    base = base or TrainingSettings()
    dataset = values.get("dataset", base.dataset)
    arch = values.get("preset", base.arch if base.arch != "custom" else "dense")
    target = values["target"] if "target" in values else (base.target_accuracy or DATASETS[dataset].suggested_target)
    return TrainingSettings(
        dataset=dataset,
        arch=arch,
        target_accuracy=target,
        monitor=values.get("monitor", base.monitor),
        max_epochs=values.get("epochs"),
        batch_size=values.get("batch"),
        learning_rate=values.get("lr"),
        train_size=values.get("images", base.train_size),
    )


def train_link(settings: TrainingSettings, language: str | None = None) -> dict[str, str]:
    """The query of a link that opens the Train page with these settings (a custom network's layers are not in it)."""
    query = {"dataset": settings.dataset, "preset": settings.arch if settings.arch in PRESETS else "dense"}
    query["target"] = "off" if settings.target_accuracy is None else f"{settings.target_accuracy:g}"
    if settings.monitor != TrainingSettings().monitor:
        query["monitor"] = settings.monitor
    if settings.max_epochs:
        query["epochs"] = str(settings.max_epochs)
    if settings.batch_size:
        query["batch"] = str(settings.batch_size)
    if settings.learning_rate:
        query["lr"] = f"{settings.learning_rate:g}"
    if settings.train_size:
        query["images"] = str(settings.train_size)
    if language and language != "en":
        query["lang"] = language
    return query
