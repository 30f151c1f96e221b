"""When two nicknames are the same name to a class: their comparison keys, the same on every database.

A class must not hold "Ömer" and "ÖMER", "Ali" and "Аli" (a Cyrillic А), "Ａｌｉ"
(full-width letters), "AIi" (a capital I for the small l), "ɑli" (a Latin alpha) or
"ᎪᏞᎥ" (Cherokee letters) side by side: one student could pass as another. Two things make
names look alike, and a single key cannot hold both (case folding turns "I" into "i", the
look-alike of "l", into the look-alike of nothing), so a nickname has two keys and two
names are the same when either key is:

- `nickname_key`: the name as a class reads it regardless of case: Unicode compatibility
  normalisation (NFKC: full-width letters become plain ones), Turkish dotted and dotless i
  folded together (I, ı, İ, i), case folding, then the look-alike skeleton;
- `skeleton_key`: the look-alike skeleton of the name as written, then folded as above.

The skeleton is Unicode's (UTS #39, "confusable detection"): every character replaced by the
prototype of the characters it can be confused with, from the confusables data that the
`confusable-homoglyphs` package ships. SQLite's lower() folds ASCII letters only, so the keys
are made here, in Python, and kept in unique columns (the same on SQLite and PostgreSQL).
`mixed_scripts` tells when a nickname mixes alphabets, which nobody needs for a name.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from pathlib import Path

TURKISH_I = str.maketrans({"İ": "i", "I": "i", "ı": "i"})
# The confusables data marks right-to-left characters with invisible left-to-right marks.
_MARKS = "\u200e\u200f"


@functools.cache
def _prototypes() -> dict[str, str]:
    """Each character that can be confused with another, and the prototype it stands for (UTS #39's confusables).

    The package keeps, for each character, the characters it can be confused with: a character that is itself the
    prototype of others lists them all, one that is not lists its prototype alone (and is listed back by it). Where
    two characters only list each other, the lower code point stands for both."""
    import confusable_homoglyphs

    data = json.loads((Path(confusable_homoglyphs.__file__).parent / "confusables.json").read_text(encoding="utf-8"))
    listed = {character: [entry["c"].strip(_MARKS) for entry in entries] for character, entries in data.items()}
    mapping = {}
    for character, others in listed.items():
        if len(others) == 1 and character in listed.get(others[0], ()):
            target = others[0]
            mutual = len(listed.get(target, ())) == 1
            mapping[character] = min(character, target) if mutual else target
    return mapping


def skeleton(text: str) -> str:
    """UTS #39's skeleton: NFD, each character replaced by its prototype, NFD again."""
    prototypes = _prototypes()
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(prototypes.get(character, character) for character in decomposed))


def _fold(text: str) -> str:
    """NFKC, Turkish i's folded together, case folded, and the dot above a folded İ dropped."""
    text = unicodedata.normalize("NFKC", " ".join(str(text).split()))
    text = text.translate(TURKISH_I).casefold()
    return "".join(character for character in unicodedata.normalize("NFD", text) if character != "\u0307")


def nickname_key(nickname: str) -> str:
    """Two nicknames with this key are the same name, whatever their case ("Ömer" and "ÖMER", "Аli" and "ALI")."""
    return unicodedata.normalize("NFC", skeleton(_fold(nickname)))


def skeleton_key(nickname: str) -> str:
    """Two nicknames with this key look the same as written ("AIi" and "Ali", "ɑli" and "Ali")."""
    return unicodedata.normalize("NFC", _fold(skeleton(unicodedata.normalize("NFKC", " ".join(str(nickname).split())))))


def same_letters(first: str, second: str) -> bool:
    """Whether two nicknames are the same letters, only in another case or form ("Ömer" and "ÖMER"), not look-alikes."""
    return _fold(first) == _fold(second)


def scripts(text: str) -> set[str]:
    """The alphabets of the letters in `text` (LATIN, CYRILLIC, GREEK, ...)."""
    found = set()
    for character in text:
        if character.isalpha():
            name = unicodedata.name(character, "")
            found.add(name.split(" ")[0] if name else "UNKNOWN")
    return found


def mixed_scripts(text: str) -> bool:
    """Whether `text` mixes letters of several alphabets ("Аli": a Cyrillic А among Latin letters)."""
    return len(scripts(unicodedata.normalize("NFKC", text))) > 1
