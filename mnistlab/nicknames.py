"""When two nicknames are the same name: the comparison key of a nickname, the same on every database.

A class must not hold "Ömer" and "ÖMER", "Ali" and "Аli" (a Cyrillic А) or "Ａｌｉ"
(full-width letters) side by side: one student could pass as another. SQLite's lower()
folds ASCII letters only, so the comparison is done here, in Python, and kept in the
`nickname_key` column with a unique index (the same on SQLite and PostgreSQL):
Unicode compatibility normalisation (NFKC: full-width and ligatures become plain
letters), Turkish dotted and dotless i folded together (I, ı, İ, i), case folding,
and letters of other alphabets that look like Latin ones mapped to them.
`mixed_scripts` tells when a nickname mixes alphabets, which nobody needs for a name.
"""

from __future__ import annotations

import unicodedata

# Cyrillic and Greek letters that look like Latin ones (after case folding), from Unicode's confusables list.
LOOK_ALIKES = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
        "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "һ": "h", "ԛ": "q", "ԝ": "w", "ӏ": "l",
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
        "χ": "x", "γ": "y", "ζ": "z",
    }
)  # fmt: skip
TURKISH_I = str.maketrans({"İ": "i", "I": "i", "ı": "i"})


def nickname_key(nickname: str) -> str:
    """The key two nicknames share when a class would read them as the same name."""
    text = unicodedata.normalize("NFKC", " ".join(str(nickname).split()))
    text = text.translate(TURKISH_I).casefold()
    text = "".join(character for character in unicodedata.normalize("NFD", text) if not unicodedata.combining(character) or character != "\u0307")
    return unicodedata.normalize("NFC", text).translate(LOOK_ALIKES)


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
