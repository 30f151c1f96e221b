"""Settings in a link: the query part of a page's URL (`/train?dataset=fashion_mnist&preset=dense&target=0.88`).

A teacher shares a page with its settings chosen as a link; the lessons on the Home
page are such links. `read_link` checks every value and returns what it can use and a
note for each key or value it cannot (an unknown key, a bad or very long value): a link
never breaks a page, it falls back to the default and says so. The Train page's keys are those of the
settings table (`mnistlab.settings.SETTINGS`), which also writes a settings link
(`link_of`), so "Copy link to these settings" and `read_link` go round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mnistlab.convolutions import KERNELS
from mnistlab.datasets import DATASETS
from mnistlab.i18n import LANGUAGES, _
from mnistlab.settings import LINK_SETTINGS

MAX_VALUE_LENGTH = 40  # longer values are refused (and shortened in the note); a network's layers may be longer
# Keys every page accepts: the language, the keys of other pages' links (a class's join code, a teacher link), and a
# glossary term whose place on the page to point at.
COMMON_KEYS = {"lang", "join", "class", "teacher", "see"}


@dataclass(frozen=True)
class LinkSettings:
    """What a link asks for, checked: the values to use, and a note for everything left out."""

    values: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _check_image_number(text: str) -> int:
    number = int(text) if text.strip().isdigit() else -1
    if not 0 <= number <= 100_000:
        raise ValueError(_("a test image number is a whole number from 0 to 100,000"))
    return number


def _choice(choices):
    def check(text: str) -> str:
        if text not in choices:
            raise ValueError(_("it must be one of: {choices}").format(choices=", ".join(choices)))
        return text

    return check


# Each page's link keys and how each value is read. The Train page's come from the settings table.
PAGE_KEYS: dict[str, dict] = {
    "train": {key: setting.parse for key, setting in LINK_SETTINGS.items()},
    "convolutions": {
        "kernel": _choice(list(KERNELS)),
        "dataset": _choice(list(DATASETS)),
        "image": _check_image_number,
    },
    "draw": {},
    "class": {},
    "glossary": {},
    "home": {},
    "explain": {},
}
LONG_VALUES = {"network": 200}


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
        if len(text) > LONG_VALUES.get(key, MAX_VALUE_LENGTH):
            notes.append(_("The link's value for {key!r} is too long, so the default is used.").format(key=key))
            continue
        try:
            values[key] = checks[key](text)
        except ValueError as problem:
            reason = str(problem).rstrip(".") or _("not a valid value")
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
