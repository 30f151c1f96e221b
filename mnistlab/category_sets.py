"""What a class draws: the digits (the default), or a set of 2 to 10 categories of the class's own.

A category's name is any text a class would type: Turkish letters, emoji, spaces
("🐟 balık"). Each category has a number, given when it is added and never reused: it is
the label its drawings keep. So renaming a category keeps its drawings, and removing one
keeps its drawings (out of training and tests, never deleted) until it is brought back.
The teacher may add or rename a category while the class draws. Ready-made sets give a
class somewhere to start (`READY_MADE`). These are rules over plain values; a class's set
is kept with the class (`mnistlab.class_identity`).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace

from mnistlab.i18n import N_, _

MIN_CATEGORIES, MAX_CATEGORIES = 2, 10
NAME_LENGTH = (1, 30)


@dataclass(frozen=True)
class ReadyMade:
    """A set a class can start from: its title and its categories' names (marked for translation)."""

    key: str
    title: str
    names: tuple[str, ...]


READY_MADE: dict[str, ReadyMade] = {
    ready.key: ready
    for ready in (
        ReadyMade("shapes", N_("Shapes"), (N_("circle"), N_("triangle"), N_("square"), N_("star"))),
        ReadyMade("weather", N_("Weather"), (N_("sun"), N_("cloud"), N_("rain"), N_("lightning"))),
        # The letters of Turkish that MNIST has not got (the same in every language).
        ReadyMade("turkish_letters", N_("Turkish letters"), ("ç", "ğ", "ı", "ö", "ş", "ü")),
    )
}


def check_category_name(name: str) -> str:
    """The name, tidied (one space between words, composed letters), or a ValueError saying what a name may be. A name
    becomes a folder's name in the set's zip (the Keras layout), so it has no slashes and is not a dot or two."""
    cleaned = unicodedata.normalize("NFC", " ".join(str(name or "").split()))
    low, high = NAME_LENGTH
    if not low <= len(cleaned) <= high:
        raise ValueError(_("A category's name has {low} to {high} characters (this one has {count}).").format(low=low, high=high, count=len(cleaned)))
    if any(_forbidden(character) for character in cleaned):
        raise ValueError(_("A category's name may use letters, digits, emoji, spaces and signs, but no slashes."))
    if cleaned in (".", ".."):
        raise ValueError(_("A category's name needs a letter, a digit or an emoji."))
    return cleaned


# The invisible characters emoji are written with (👩‍🔬, ❤️); any other control or format character is refused.
EMOJI_JOINERS = frozenset({"\u200d", "\ufe0f", "\ufe0e"})


def _forbidden(character: str) -> bool:
    kind = unicodedata.category(character)
    return character in "/\\" or kind in ("Cc", "Cs", "Co", "Cn") or (kind == "Cf" and character not in EMOJI_JOINERS)


def same_name(first: str, second: str) -> bool:
    """Two names a class would take for one category: the same letters in another case ("Star", "STAR", "star")."""
    return unicodedata.normalize("NFC", first).casefold() == unicodedata.normalize("NFC", second).casefold()


@dataclass(frozen=True)
class Category:
    """A category of a class's set: its number (its drawings' label, for good), its name, and whether it was removed."""

    number: int
    name: str
    removed: bool = False


@dataclass(frozen=True)
class CategorySet:
    """A class's categories, in the order they were added."""

    categories: tuple[Category, ...]

    @classmethod
    def of(cls, names) -> CategorySet:
        """A new set of these names (2 to 10, no two the same)."""
        drawn = cls(())
        for name in names:
            drawn = drawn._added(name)
        drawn._check_size()
        return drawn

    @classmethod
    def ready_made(cls, key: str) -> CategorySet:
        """A ready-made set, its names in the page's language."""
        if key not in READY_MADE:
            raise ValueError(_("There is no ready-made set called {key}.").format(key=key))
        return cls.of(_(name) for name in READY_MADE[key].names)

    @property
    def active(self) -> tuple[Category, ...]:
        """The categories the class draws and trains on (not removed)."""
        return tuple(category for category in self.categories if not category.removed)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(category.name for category in self.active)

    def category(self, number: int) -> Category:
        for category in self.categories:
            if category.number == number:
                return category
        raise ValueError(_("This set has no category number {number}.").format(number=number))

    def add(self, name: str) -> CategorySet:
        """The set with a new category (a new number); a removed category of that name comes back instead."""
        name = check_category_name(name)
        for category in self.categories:
            if category.removed and same_name(category.name, name):
                return self.restore(category.number)
        added = self._added(name)
        if len(added.active) > MAX_CATEGORIES:
            raise ValueError(_("A set has at most {most} categories.").format(most=MAX_CATEGORIES))
        return added

    def rename(self, number: int, name: str) -> CategorySet:
        """The set with category `number` called `name` (its drawings keep their label)."""
        name = check_category_name(name)
        self.category(number)
        self._check_free(name, but=number)
        return CategorySet(tuple(replace(category, name=name) if category.number == number else category for category in self.categories))

    def remove(self, number: int) -> CategorySet:
        """The set without category `number` for drawing and training; its drawings are kept."""
        if not self.category(number).removed and len(self.active) <= MIN_CATEGORIES:
            raise ValueError(_("A set needs at least {least} categories: add another before removing this one.").format(least=MIN_CATEGORIES))
        return CategorySet(tuple(replace(category, removed=True) if category.number == number else category for category in self.categories))

    def restore(self, number: int) -> CategorySet:
        """The set with removed category `number` back, with its drawings."""
        category = self.category(number)
        if not category.removed:
            return self
        if len(self.active) >= MAX_CATEGORIES:
            raise ValueError(_("A set has at most {most} categories.").format(most=MAX_CATEGORIES))
        self._check_free(category.name, but=number)
        return CategorySet(tuple(replace(one, removed=False) if one.number == number else one for one in self.categories))

    def to_json(self) -> list[dict]:
        return [{"number": category.number, "name": category.name, "removed": category.removed} for category in self.categories]

    @classmethod
    def from_json(cls, rows) -> CategorySet:
        """A set as `to_json` wrote it (a set read back is checked as a new one would be)."""
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise ValueError(_("This class's set of categories cannot be read."))
        categories = tuple(Category(int(row["number"]), check_category_name(row["name"]), bool(row.get("removed", False))) for row in rows)
        if len({category.number for category in categories}) != len(categories):
            raise ValueError(_("This class's set of categories cannot be read."))
        read = cls(categories)
        read._check_size()
        return read

    def _added(self, name: str) -> CategorySet:
        name = check_category_name(name)
        self._check_free(name)
        number = max((category.number for category in self.categories), default=-1) + 1
        return CategorySet((*self.categories, Category(number, name)))

    def _check_free(self, name: str, but: int | None = None) -> None:
        for category in self.active:
            if category.number != but and same_name(category.name, name):
                raise ValueError(_("The set already has a category called {name}.").format(name=category.name))

    def _check_size(self) -> None:
        if not MIN_CATEGORIES <= len(self.active) <= MAX_CATEGORIES:
            raise ValueError(
                _("A set has {least} to {most} categories (this one has {count}).").format(
                    least=MIN_CATEGORIES, most=MAX_CATEGORIES, count=len(self.active)
                )
            )
