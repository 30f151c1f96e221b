"""Translations: gettext catalogs, one language per browser session, and numbers formatted for it.

Every user-visible string goes through `_()` (or `ngettext` for plurals). Strings
defined at import time, such as preset titles and glossary entries, are marked with
`N_()` for extraction and translated where they are shown. The catalogs are
`mnistlab/locales/LANG/LC_MESSAGES/mnistlab.po`, compiled to `.mo` with Babel
(`pybabel compile`). The language is held in a context variable, set by each page
run for its session, so two browsers can read the app in two languages at once.
"""

from __future__ import annotations

import contextvars
import gettext
from functools import cache
from pathlib import Path

LOCALES = Path(__file__).resolve().parent / "locales"
DOMAIN = "mnistlab"
LANGUAGES = {"en": "English", "tr": "Türkçe"}
DEFAULT_LANGUAGE = "en"

_language: contextvars.ContextVar[str] = contextvars.ContextVar("mnistlab_language", default=DEFAULT_LANGUAGE)


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog of `language` (English, the source language, needs none)."""
    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, localedir=LOCALES, languages=[language], fallback=True)


def set_language(language: str | None) -> str:
    """Use `language` for this thread's strings from now on; unknown languages mean English."""
    chosen = language if language in LANGUAGES else DEFAULT_LANGUAGE
    _language.set(chosen)
    return chosen


def current_language() -> str:
    return _language.get()


def _(message: str) -> str:
    """`message` in the current language."""
    return translations(_language.get()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The singular or plural of a message in the current language, for `count`."""
    return translations(_language.get()).ngettext(singular, plural, count)


def N_(message: str) -> str:
    """Mark a string for translation where it is defined; translate it with `_()` where it is shown."""
    return message
