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
from collections.abc import Callable
from functools import cache
from pathlib import Path

LOCALES = Path(__file__).resolve().parent / "locales"
DOMAIN = "mnistlab"
LANGUAGES = {"en": "English", "tr": "Türkçe"}
DEFAULT_LANGUAGE = "en"

_language: contextvars.ContextVar[str | None] = contextvars.ContextVar("mnistlab_language", default=None)
# Where the language comes from when this thread has not set one: the web app registers the browser session's
# language here, so a fragment rerun (which does not run app.py) speaks the session's language too.
_provider: Callable[[], str | None] | None = None


def catalog_path(language: str, suffix: str = ".po") -> Path:
    return LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}{suffix}"


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog of `language` (English, the source language, needs none).

    `scripts/install.sh` compiles each `.po` to `.mo` (`pybabel compile`); a `.mo` that is
    missing or older than its `.po` (a catalog just edited) is compiled here, in memory, by Babel.
    """
    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    po, mo = catalog_path(language), catalog_path(language, ".mo")
    if mo.is_file() and (not po.is_file() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as compiled:
            return gettext.GNUTranslations(compiled)
    if not po.is_file():
        return gettext.NullTranslations()
    import io

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as source:
        catalog = read_po(source, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def set_language(language: str | None) -> str:
    """Use `language` for this thread's strings from now on; unknown languages mean English."""
    chosen = language if language in LANGUAGES else DEFAULT_LANGUAGE
    _language.set(chosen)
    return chosen


def set_language_provider(provider: Callable[[], str | None] | None) -> None:
    """Ask `provider` for the language whenever this thread has not set one (see `_provider`)."""
    global _provider
    _provider = provider


def current_language() -> str:
    language = _language.get()
    if language is None and _provider is not None:
        try:
            language = _provider()
        except Exception:  # noqa: BLE001 (no session here, e.g. a background thread: English)
            language = None
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def _(message: str) -> str:
    """`message` in the current language."""
    return translations(current_language()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The singular or plural of a message in the current language, for `count`."""
    return translations(current_language()).ngettext(singular, plural, count)


def percent(value: float, digits: int = 1, signed: bool = False) -> str:
    """A fraction as a percentage written the language's way (Babel, CLDR): 91.5% in English, %91,5 in Turkish.
    With `signed`, a plus sign for gains: +8.1% and +%8,1."""
    from babel import Locale
    from babel.numbers import format_percent

    language = current_language()
    pattern = Locale.parse(language).percent_formats[None].pattern
    if digits:
        pattern = pattern.replace("0", "0." + "0" * digits, 1)
    text = format_percent(abs(value) if signed else value, format=pattern, locale=language)
    if signed:
        text = ("+" if value >= 0 else "−") + text
    return text


def number(value: float, digits: int = 0) -> str:
    """A number written the language's way: 1,234.5 in English, 1.234,5 in Turkish."""
    from babel.numbers import format_decimal

    return format_decimal(value, format="#,##0" + ("." + "0" * digits if digits else ""), locale=current_language())


def decimal(value: float, most_digits: int = 6) -> str:
    """A number with as many decimals as it needs (up to `most_digits`), the language's way: 0.0003 and 0,0003."""
    from babel.numbers import format_decimal

    return format_decimal(value, format="#,##0." + "#" * most_digits, locale=current_language())


def day(timestamp: float) -> str:
    """A date written the language's way (Babel, CLDR): "December 14, 2026", "14 Aralık 2026"."""
    import datetime

    from babel.dates import format_date

    return format_date(datetime.date.fromtimestamp(timestamp), format="long", locale=current_language())


def seconds(value: float) -> str:
    """A duration for people: "42 s", "3 min 5 s" (never "3.691000")."""
    total = int(round(value))
    if total < 60:
        return _("{seconds} s").format(seconds=total)
    minutes, rest = divmod(total, 60)
    return _("{minutes} min {seconds} s").format(minutes=minutes, seconds=rest)


def N_(message: str) -> str:
    """Mark a string for translation where it is defined; translate it with `_()` where it is shown."""
    return message


# The Turkish alphabet's order (ç after c, ğ after g, ı before i, ö after o, ş after s, ü after u); a circumflex vowel
# sorts with its plain vowel.
_TURKISH_ALPHABET = "abcçdefgğhıijklmnoöpqrsştuüvwxyz"  # q, w and x where English has them
_TURKISH_LOWER = str.maketrans({"I": "ı", "İ": "i", "â": "a", "Â": "a", "î": "i", "Î": "i", "û": "u", "Û": "u"})


def name_order(name: str) -> tuple:
    """A key that sorts names as a reader of the page's language expects: in Turkish, Çağla after Cem and Ömer after
    Oya; in English, Émile with the E's. Case does not count (it only breaks ties)."""
    import unicodedata

    if current_language() == "tr":
        lowered = name.translate(_TURKISH_LOWER).lower()
        letters = tuple(_turkish_letter(letter) for letter in lowered)
    else:
        plain = "".join(letter for letter in unicodedata.normalize("NFD", name) if not unicodedata.combining(letter))
        letters = tuple((0 if letter.isalpha() else -1, 0, letter) for letter in plain.casefold())
    return letters, name


def _turkish_letter(letter: str) -> tuple:
    if letter in _TURKISH_ALPHABET:
        return 0, _TURKISH_ALPHABET.index(letter), ""
    return (1 if letter.isalpha() else -1), 0, letter  # other letters after the alphabet; spaces and digits before it
