"""A class's identity: its join code, its teacher key and the tokens a teacher's browser keeps, its settings.

A teacher creates a class and gets two things: a short join code (shown big, as a link and
a QR code; no letters or digits that look alike on a projector) and a teacher key, a random
secret shown once, that every change to the class needs. The database keeps only the key's
hash. The teacher's browser keeps a signed token instead of the key (`teacher_token`), valid
for a school day, so a reload keeps the dashboard. The teacher sets the class model, opens or
closes it to drawings, shows or hides nicknames, sets a lesson's budget, and deletes it.

`ClassIdentity` is the part of `mnistlab.classroom.ClassStore` that does this.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass

import sqlalchemy as sa

from mnistlab.category_sets import CategorySet
from mnistlab.database import classes, drawings, meta
from mnistlab.i18n import _
from mnistlab.retention import Forgotten, delete_class_rows

# Join codes avoid letters and digits that look alike on a projector (0/O, 1/I/L).
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
CLASS_NAME_LENGTH = (1, 60)
# A teacher's browser keeps a signed token (not the key) so a reload keeps the dashboard, for a school day.
TOKEN_PREFIX = "teach1."  # noqa: S105 (a format marker, not a secret)
TOKEN_LIFETIME = 12 * 3600


class TeacherKeyError(PermissionError):
    """The teacher key is missing or wrong: only the class's teacher can do this."""


@dataclass(frozen=True)
class ClassInfo:
    class_id: int
    code: str
    name: str
    model_name: str | None
    is_open: bool
    show_names: bool
    created_at: float
    max_epochs: int | None = None  # the lesson's budget for the class's trainings (None: the server's limits)
    train_images: int | None = None
    categories: CategorySet | None = None  # what the class draws: None for the digits, else its own set
    category_set: int | None = None  # that set's number in the class (its drawings keep it)

    @property
    def draws_digits(self) -> bool:
        return self.categories is None

    @property
    def join_path(self) -> str:
        return f"/class?join={self.code}"


def within_budget(settings, info: ClassInfo):
    """The training settings within the class's budget (the teacher's most epochs and training images)."""
    from dataclasses import replace

    changes = {}
    if info.max_epochs is not None and (settings.max_epochs or settings.base_recipe.max_epochs) > info.max_epochs:
        changes["max_epochs"] = info.max_epochs
    if info.train_images is not None and (settings.train_size is None or settings.train_size > info.train_images):
        changes["train_size"] = info.train_images
    return replace(settings, **changes) if changes else settings


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def normalise_code(code: str) -> str:
    """A join code as typed (any case, spaces, dashes) in its canonical form."""
    return re.sub(r"[\s-]", "", str(code or "")).upper()


def check_class_name(name: str) -> str:
    cleaned = " ".join(str(name or "").split())
    low, high = CLASS_NAME_LENGTH
    if not low <= len(cleaned) <= high:
        raise ValueError(_("A class name has {low} to {high} characters (this one has {count}).").format(low=low, high=high, count=len(cleaned)))
    if any(unicodedata.category(character).startswith("C") for character in cleaned):
        raise ValueError(_("A class name cannot contain control characters."))
    return cleaned


def _class_info(row) -> ClassInfo:
    stored = row.categories or {}
    categories = CategorySet.from_json(stored["categories"]) if stored else None
    return ClassInfo(
        row.id,
        row.code,
        row.name,
        row.model_name,
        bool(row.is_open),
        bool(row.show_names),
        row.created_at,
        row.max_epochs,
        row.train_images,
        categories,
        stored.get("set"),
    )


# Figures and exports


class ClassIdentity:
    """Classes and their teachers (a part of `ClassStore`: it needs `_engine` and `clock`)."""

    def create_class(self, name: str) -> tuple[ClassInfo, str]:
        """A new open class, and its teacher key (shown once; only its hash is kept)."""
        name = check_class_name(name)
        key = secrets.token_urlsafe(18)
        for _attempt in range(20):
            code = "".join(secrets.choice(CODE_ALPHABET) for _position in range(CODE_LENGTH))
            try:
                with self._engine.begin() as connection:
                    class_id = connection.execute(
                        classes.insert().values(
                            code=code, name=name, teacher_key_hash=_hash_key(key), is_open=True, show_names=True, created_at=self.clock()
                        )
                    ).inserted_primary_key[0]
                return self.get(class_id), key
            except sa.exc.IntegrityError:
                continue  # That code is taken: draw another.
        raise RuntimeError(_("Could not find a free join code; try again."))

    def get(self, class_id: int) -> ClassInfo | None:
        with self._engine.connect() as connection:
            row = connection.execute(sa.select(classes).where(classes.c.id == class_id)).first()
        return _class_info(row) if row else None

    def by_code(self, code: str) -> ClassInfo | None:
        code = normalise_code(code)
        if not code or len(code) > 12:
            return None
        with self._engine.connect() as connection:
            row = connection.execute(sa.select(classes).where(classes.c.code == code)).first()
        return _class_info(row) if row else None

    def is_teacher(self, class_id: int, key: str | None) -> bool:
        """Whether `key` is the class's teacher key, or a teacher token this server signed for it and still valid."""
        with self._engine.connect() as connection:
            stored = connection.execute(sa.select(classes.c.teacher_key_hash).where(classes.c.id == class_id)).scalar()
        if not (stored and key):
            return False
        if key.startswith(TOKEN_PREFIX):
            return self._token_valid(class_id, key, stored)
        return hmac.compare_digest(stored, _hash_key(key))

    # Teacher tokens: what a teacher's browser keeps (in a cookie) so a reload keeps the dashboard, never the key itself

    def _secret(self) -> bytes:
        """This database's signing secret for teacher tokens (made once, shared by every replica)."""
        with self._engine.begin() as connection:
            value = connection.execute(sa.select(meta.c.value).where(meta.c.key == "token_secret")).scalar()
            if value is None:
                value = secrets.token_hex(32)
                try:
                    with connection.begin_nested():
                        connection.execute(meta.insert().values(key="token_secret", value=value))
                except sa.exc.IntegrityError:
                    value = connection.execute(sa.select(meta.c.value).where(meta.c.key == "token_secret")).scalar()
        return bytes.fromhex(value)

    def _signature(self, class_id: int, expires: int, key_hash: str) -> str:
        message = f"{class_id}.{expires}.{key_hash}".encode()
        return hmac.new(self._secret(), message, hashlib.sha256).hexdigest()[:40]

    def teacher_token(self, class_id: int, key: str, lifetime: float = TOKEN_LIFETIME) -> str:
        """A signed token that opens the class's controls for `lifetime` seconds, for the teacher's browser to keep."""
        if not self.is_teacher(class_id, key):
            raise TeacherKeyError(_("Only the class's teacher can do this (the teacher key is missing or wrong)."))
        with self._engine.connect() as connection:
            key_hash = connection.execute(sa.select(classes.c.teacher_key_hash).where(classes.c.id == class_id)).scalar()
        expires = int(self.clock() + lifetime)
        return f"{TOKEN_PREFIX}{class_id}.{expires}.{self._signature(class_id, expires, key_hash)}"

    def _token_valid(self, class_id: int, token: str, key_hash: str) -> bool:
        try:
            token_class, expires, signature = token.removeprefix(TOKEN_PREFIX).split(".")
            token_class, expires = int(token_class), int(expires)
        except ValueError:
            return False
        if token_class != class_id or expires < self.clock():
            return False
        return hmac.compare_digest(signature, self._signature(class_id, expires, key_hash))

    def class_of_token(self, token: str) -> ClassInfo | None:
        """The class a valid teacher token opens, or None."""
        try:
            class_id = int(token.removeprefix(TOKEN_PREFIX).split(".")[0]) if token.startswith(TOKEN_PREFIX) else -1
        except ValueError:
            return None
        info = self.get(class_id) if class_id > 0 else None
        return info if info is not None and self.is_teacher(class_id, token) else None

    def _require_teacher(self, class_id: int, key: str | None) -> None:
        if not self.is_teacher(class_id, key):
            raise TeacherKeyError(_("Only the class's teacher can do this (the teacher key is missing or wrong)."))

    def _update_class(self, class_id: int, key: str | None, **values) -> ClassInfo:
        self._require_teacher(class_id, key)
        with self._engine.begin() as connection:
            connection.execute(classes.update().where(classes.c.id == class_id).values(**values))
        return self.get(class_id)

    def set_model(self, class_id: int, key: str | None, model_name: str | None) -> ClassInfo:
        return self._update_class(class_id, key, model_name=model_name)

    def set_open(self, class_id: int, key: str | None, is_open: bool) -> ClassInfo:
        return self._update_class(class_id, key, is_open=bool(is_open))

    def set_show_names(self, class_id: int, key: str | None, show_names: bool) -> ClassInfo:
        return self._update_class(class_id, key, show_names=bool(show_names))

    def set_budget(self, class_id: int, key: str | None, max_epochs: int | None, train_images: int | None) -> ClassInfo:
        """A lesson's budget for every training of the class: at most this many epochs and training images (None: no limit)."""
        from mnistlab.settings import SETTING

        max_epochs = SETTING["max_epochs"].check(max_epochs)
        train_images = SETTING["train_size"].check(train_images)
        return self._update_class(class_id, key, max_epochs=max_epochs, train_images=train_images)

    def choose_categories(self, class_id: int, key: str | None, categories: CategorySet | None) -> ClassInfo:
        """What the class draws from now on: a new set of its own categories, or the digits (None). Drawings already
        made are kept: the digits' come back with the digits; an earlier set's stay in the database, apart (each set
        has its number, and its drawings keep it)."""
        if categories is None:
            return self._update_class(class_id, key, categories=None)
        if not isinstance(categories, CategorySet):
            raise ValueError(_("A class draws the digits or a set of categories."))
        self._require_teacher(class_id, key)
        with self._engine.begin() as connection:
            stored = connection.execute(sa.select(classes.c.categories).where(classes.c.id == class_id)).scalar() or {}
            drawn = connection.execute(sa.select(sa.func.max(drawings.c.category_set)).where(drawings.c.class_id == class_id)).scalar()
            number = max(stored.get("set") or 0, drawn or 0) + 1
            connection.execute(
                classes.update().where(classes.c.id == class_id).values(categories={"set": number, "categories": categories.to_json()})
            )
        return self.get(class_id)

    def edit_categories(self, class_id: int, key: str | None, categories: CategorySet) -> ClassInfo:
        """The class's set changed while it draws (a category added, renamed, removed or brought back): its number and
        every drawing stay."""
        info = self.get(class_id)
        if info is None or info.categories is None:
            raise ValueError(_("This class draws the digits: choose a set of categories first."))
        kept = {category.number for category in categories.categories}
        if not {category.number for category in info.categories.categories} <= kept:
            raise ValueError(_("A category stays in its set once drawn for: remove it instead, and its drawings are kept."))
        return self._update_class(class_id, key, categories={"set": info.category_set, "categories": categories.to_json()})

    def delete_class(self, class_id: int, key: str | None) -> Forgotten:
        """Delete the class with everything in it: students, drawings, shares, and the runs its students trained in it
        (`mnistlab.retention`). Returns what was deleted: the caller removes the runs' folders."""
        self._require_teacher(class_id, key)
        with self._engine.begin() as connection:
            return delete_class_rows(connection, class_id, now=self.clock())
