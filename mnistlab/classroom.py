"""Classroom mode: a class that joins with a code, draws labelled digits, and measures models on them.

A teacher creates a class and gets two things: a short join code for the class (shown
big, as a link and a QR code) and a teacher key, a random secret shown once, that every
change to the class needs (the database keeps only its hash). Students join with the
code and a nickname (no accounts, no personal data), draw the digits they are asked for
("Draw a 7", each digit about equally often, in a shuffled order), and each drawing is
kept with its label, the student's correction if they drew another digit, the class
model's answer at the time, the 28x28 image the network sees and the raw canvas PNG.

The class's drawings are data: the dashboard measures the class model on them (the
"real-world gap" against its MNIST test accuracy), they export as MNIST's own IDX files
or Keras' mnist.npz layout, and a training can be tested on them or trained with them.
Each drawing belongs for good to one of two halves, by its id: even ids to the class's
training split, odd ids to its test split, so a model trained with the class's drawings
is never scored on one it trained on. A hidden drawing (the teacher hides a scribble)
leaves every figure, export and split.

Limits: 20,000 drawings per class, one saved drawing a second per student, 2 MB per
raw PNG. Deleting a class deletes its students, drawings and shares.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import random
import re
import secrets
import time
import unicodedata
import zipfile
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from mnistlab.database import Database, class_runs, classes, drawings, meta, students
from mnistlab.i18n import _, number
from mnistlab.idx import write_idx
from mnistlab.nicknames import mixed_scripts, nickname_key

# Join codes avoid letters and digits that look alike on a projector (0/O, 1/I/L).
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
MAX_DRAWINGS_PER_CLASS = 20_000
SECONDS_BETWEEN_DRAWINGS = 1.0
MAX_PNG_BYTES = 2 * 1024 * 1024
NICKNAME_LENGTH = (1, 20)
CLASS_NAME_LENGTH = (1, 60)
# Letters of any alphabet (Turkish ç, ğ, ı, ö, ş, ü too), digits, spaces and - _ . only.
NICKNAME_PATTERN = re.compile(r"[^\W_]+(?:[ ._-]?[^\W_]+)*\.?")
DIGITS = tuple(range(10))
# A teacher's browser keeps a signed token (not the key) so a reload keeps the dashboard, for a school day.
TOKEN_PREFIX = "teach1."  # noqa: S105 (a format marker, not a secret)
TOKEN_LIFETIME = 12 * 3600


class TeacherKeyError(PermissionError):
    """The teacher key is missing or wrong: only the class's teacher can do this."""


class ClassLimitError(ValueError):
    """A class limit was reached (the class is closed or full, or a student saves too fast)."""


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

    @property
    def join_path(self) -> str:
        return f"/class?join={self.code}"


@dataclass(frozen=True)
class Student:
    student_id: int
    class_id: int
    nickname: str


@dataclass(frozen=True)
class RosterRow:
    """A student as the teacher's list shows them."""

    student_id: int
    nickname: str
    drawings: int
    joined_at: float
    last_drawing_at: float | None

    @property
    def last_active(self) -> float:
        return max(self.joined_at, self.last_drawing_at or 0.0)


@dataclass(frozen=True)
class Drawing:
    drawing_id: int
    student_id: int
    nickname: str
    prompt: int
    label: int
    predicted: int | None
    confidence: float | None
    image: np.ndarray  # 28x28 uint8, as the network sees it
    hidden: bool
    created_at: float

    @property
    def split(self) -> str:
        return split_of(self.drawing_id)


@dataclass(frozen=True)
class ClassDrawings:
    """A class's visible drawings as arrays (ids, images N x 28 x 28 uint8, labels, student ids)."""

    ids: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    student_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def split(self, name: str) -> ClassDrawings:
        """The drawings of one split ("train": even ids, "test": odd ids)."""
        if name not in ("train", "test"):
            raise ValueError(f"A class split is 'train' or 'test', not {name!r}.")
        keep = (self.ids % 2 == 0) if name == "train" else (self.ids % 2 == 1)
        return ClassDrawings(self.ids[keep], self.images[keep], self.labels[keep], self.student_ids[keep])

    def per_digit(self) -> dict[int, int]:
        counts = np.bincount(self.labels.astype(np.int64), minlength=10) if len(self) else np.zeros(10, np.int64)
        return {digit: int(counts[digit]) for digit in DIGITS}


def split_of(drawing_id: int) -> str:
    return "train" if drawing_id % 2 == 0 else "test"


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def normalise_code(code: str) -> str:
    """A join code as typed (any case, spaces, dashes) in its canonical form."""
    return re.sub(r"[\s-]", "", str(code or "")).upper()


def check_nickname(nickname: str) -> str:
    """The nickname, tidied, or ValueError saying what a nickname may be."""
    cleaned = unicodedata.normalize("NFC", " ".join(str(nickname or "").split()))
    low, high = NICKNAME_LENGTH
    if not low <= len(cleaned) <= high:
        raise ValueError(_("A nickname has {low} to {high} characters (this one has {count}).").format(low=low, high=high, count=len(cleaned)))
    if not NICKNAME_PATTERN.fullmatch(cleaned):
        raise ValueError(_("A nickname may use letters, digits, spaces and - _ . between them; no other signs."))
    if mixed_scripts(cleaned):
        raise ValueError(_("A nickname uses the letters of one alphabet (this one mixes alphabets, which can make it look like another name)."))
    return cleaned


class UnknownCodeError(ValueError):
    """No class has this join code."""


def check_class_name(name: str) -> str:
    cleaned = " ".join(str(name or "").split())
    low, high = CLASS_NAME_LENGTH
    if not low <= len(cleaned) <= high:
        raise ValueError(_("A class name has {low} to {high} characters (this one has {count}).").format(low=low, high=high, count=len(cleaned)))
    if any(unicodedata.category(character).startswith("C") for character in cleaned):
        raise ValueError(_("A class name cannot contain control characters."))
    return cleaned


def check_digit(value, what: str = "A digit") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= 9:
        raise ValueError(f"{what} is a whole number from 0 to 9, not {value!r}.")
    return int(value)


class ClassStore:
    """Classes, students, drawings and shared runs in the app's database."""

    def __init__(self, database: Database, clock=time.time):
        self.database = database
        self.clock = clock

    @property
    def _engine(self):
        return self.database.engine

    # Classes (the teacher)

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

    def hide_drawing(self, class_id: int, key: str | None, drawing_id: int, hidden: bool = True) -> None:
        self._require_teacher(class_id, key)
        with self._engine.begin() as connection:
            changed = connection.execute(
                drawings.update().where(drawings.c.id == drawing_id, drawings.c.class_id == class_id).values(hidden=bool(hidden))
            ).rowcount
        if not changed:
            raise ValueError(f"Drawing {drawing_id} is not in this class.")

    def delete_class(self, class_id: int, key: str | None) -> None:
        """Delete the class with its students, drawings and shares (the runs themselves stay their owners')."""
        self._require_teacher(class_id, key)
        with self._engine.begin() as connection:
            for table in (class_runs, drawings, students):
                connection.execute(table.delete().where(table.c.class_id == class_id))
            connection.execute(classes.delete().where(classes.c.id == class_id))

    # Students

    def join(self, code: str, nickname: str, owner: str) -> Student:
        """Join the class with this code. The same browser joining again with its nickname gets its place back (also
        after leaving); a nickname another browser has (compared as a class reads it: "Ömer" is "ÖMER") is refused."""
        info = self.by_code(code)
        if info is None:
            raise UnknownCodeError(_("There is no class with this code. Check the code on the teacher's screen."))
        nickname = check_nickname(nickname)
        key = nickname_key(nickname)
        taken = _("Someone in this class is already called {nickname}; pick another nickname.").format(nickname=nickname)
        try:
            with self._engine.begin() as connection:
                row = connection.execute(sa.select(students).where(students.c.class_id == info.class_id, students.c.nickname_key == key)).first()
                if row is not None:
                    if row.owner != owner:
                        raise ValueError(taken)
                    connection.execute(students.update().where(students.c.id == row.id).values(left_at=None))
                    return Student(row.id, info.class_id, row.nickname)
                student_id = connection.execute(
                    students.insert().values(class_id=info.class_id, nickname=nickname, nickname_key=key, owner=owner, joined_at=self.clock())
                ).inserted_primary_key[0]
        except sa.exc.IntegrityError:
            raise ValueError(taken) from None  # another browser took it in the same moment
        return Student(student_id, info.class_id, nickname)

    def leave(self, student_id: int, owner: str) -> None:
        """The student leaves the class (their drawings stay the class's); a reload does not put them back in."""
        with self._engine.begin() as connection:
            connection.execute(students.update().where(students.c.id == student_id, students.c.owner == owner).values(left_at=self.clock()))

    def remove_student(self, class_id: int, key: str | None, student_id: int) -> None:
        """The teacher removes a student who joined and went (their drawings stay the class's)."""
        self._require_teacher(class_id, key)
        with self._engine.begin() as connection:
            connection.execute(students.update().where(students.c.id == student_id, students.c.class_id == class_id).values(left_at=self.clock()))

    def student_of(self, class_id: int, owner: str) -> Student | None:
        """The student this browser is in the class as (a reload finds its place again); None after it left."""
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(students)
                .where(students.c.class_id == class_id, students.c.owner == owner, students.c.left_at.is_(None))
                .order_by(students.c.id.desc())
            ).first()
        return Student(row.id, row.class_id, row.nickname) if row else None

    def latest_student_of(self, owner: str) -> Student | None:
        """The class place this browser joined last and has not left (a reload of any page finds it again)."""
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(students).where(students.c.owner == owner, students.c.left_at.is_(None)).order_by(students.c.id.desc())
            ).first()
        return Student(row.id, row.class_id, row.nickname) if row else None

    def student(self, student_id: int) -> Student | None:
        """A student who is in a class (None once they left or were removed)."""
        with self._engine.connect() as connection:
            row = connection.execute(sa.select(students).where(students.c.id == student_id, students.c.left_at.is_(None))).first()
        return Student(row.id, row.class_id, row.nickname) if row else None

    def students(self, class_id: int) -> list[Student]:
        """The students in the class now (not those who left or were removed)."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(students).where(students.c.class_id == class_id, students.c.left_at.is_(None)).order_by(students.c.id)
            ).all()
        return [Student(row.id, row.class_id, row.nickname) for row in rows]

    def owners(self, class_id: int) -> dict[str, str]:
        """The browsers of the class's students and their nicknames (whose runs belong to the class's race)."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(students.c.owner, students.c.nickname).where(students.c.class_id == class_id, students.c.left_at.is_(None))
            ).all()
        return {row.owner: row.nickname for row in rows}

    def hidden(self, class_id: int) -> list[Drawing]:
        """The drawings the teacher hid, newest first (they can be shown again)."""
        return [drawing for drawing in self.drawings(class_id, include_hidden=True) if drawing.hidden]

    def roster(self, class_id: int) -> list[RosterRow]:
        """The teacher's list: every student in the class, with their drawings and when they were last active."""
        counts = (
            sa.select(drawings.c.student_id, sa.func.count().label("drawings"))
            .where(drawings.c.class_id == class_id)
            .group_by(drawings.c.student_id)
            .subquery()
        )
        query = (
            sa.select(students.c.id, students.c.nickname, students.c.joined_at, students.c.last_drawing_at, counts.c.drawings)
            .select_from(students.outerjoin(counts, counts.c.student_id == students.c.id))
            .where(students.c.class_id == class_id, students.c.left_at.is_(None))
            .order_by(students.c.id)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [RosterRow(row.id, row.nickname, int(row.drawings or 0), row.joined_at, row.last_drawing_at) for row in rows]

    # Drawings

    def tally(self, student_id: int) -> dict[int, int]:
        """How many drawings of each digit this student has saved, by the digit they drew (hidden ones too: they drew them)."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(drawings.c.label, sa.func.count()).where(drawings.c.student_id == student_id).group_by(drawings.c.label)
            ).all()
        counts = dict.fromkeys(DIGITS, 0)
        counts.update({int(label): int(count) for label, count in rows})
        return counts

    def next_prompt(self, student_id: int, generator: random.Random | None = None) -> int:
        """The digit to ask for next: one this student has drawn least often (by what they drew), at random among those."""
        tally = self.tally(student_id)
        fewest = min(tally.values())
        return (generator or random).choice([digit for digit, count in tally.items() if count == fewest])

    def save_drawing(
        self,
        student_id: int,
        prompt: int,
        image: np.ndarray,
        *,
        label: int | None = None,
        predicted: int | None = None,
        confidence: float | None = None,
        model_name: str | None = None,
        png: bytes | None = None,
    ) -> int:
        """Save one drawing; `label` is the student's correction when they drew another digit than `prompt`."""
        prompt = check_digit(prompt, "The digit asked for")
        label = prompt if label is None else check_digit(label, "The digit drawn")
        if predicted is not None:
            predicted = check_digit(predicted, "The model's answer")
        image = np.asarray(image)
        if image.shape != (28, 28):
            raise ValueError(f"A class drawing is kept as the 28x28 image the network sees, not {image.shape}.")
        if png is not None and len(png) > MAX_PNG_BYTES:
            raise ValueError(f"The drawing's picture is {len(png):,} bytes; at most {MAX_PNG_BYTES:,} are kept.")
        pixels = np.clip(image, 0, 255).astype(np.uint8).tobytes()
        now = self.clock()
        with self._engine.begin() as connection:
            student = connection.execute(sa.select(students).where(students.c.id == student_id)).first()
            if student is None:
                raise ValueError(_("This student is not in a class any more (the class may have been deleted)."))
            info = connection.execute(sa.select(classes).where(classes.c.id == student.class_id)).first()
            if not info.is_open:
                raise ClassLimitError(_("The teacher has closed this class to new drawings."))
            # The rate limit is claimed in the same transaction, so two quick clicks cannot both pass.
            claimed = connection.execute(
                students.update()
                .where(
                    students.c.id == student_id,
                    sa.or_(students.c.last_drawing_at.is_(None), students.c.last_drawing_at <= now - SECONDS_BETWEEN_DRAWINGS),
                )
                .values(last_drawing_at=now)
            ).rowcount
            if not claimed:
                raise ClassLimitError(_("One drawing a second, please: wait a moment and save again."))
            count = connection.execute(sa.select(sa.func.count()).select_from(drawings).where(drawings.c.class_id == student.class_id)).scalar()
            if count >= MAX_DRAWINGS_PER_CLASS:
                raise ClassLimitError(_("This class has {count} drawings, the most a class keeps.").format(count=number(MAX_DRAWINGS_PER_CLASS)))
            return connection.execute(
                drawings.insert().values(
                    class_id=student.class_id,
                    student_id=student_id,
                    prompt=prompt,
                    label=label,
                    predicted=predicted,
                    confidence=None if confidence is None else float(confidence),
                    model_name=model_name,
                    image=pixels,
                    png=png,
                    hidden=False,
                    created_at=now,
                )
            ).inserted_primary_key[0]

    def drawings(self, class_id: int, *, include_hidden: bool = False, limit: int | None = None) -> list[Drawing]:
        """The class's drawings, newest first."""
        query = (
            sa.select(drawings, students.c.nickname)
            .join(students, students.c.id == drawings.c.student_id)
            .where(drawings.c.class_id == class_id)
            .order_by(drawings.c.id.desc())
        )
        if not include_hidden:
            query = query.where(drawings.c.hidden.is_(False))
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            Drawing(
                row.id,
                row.student_id,
                row.nickname,
                row.prompt,
                row.label,
                row.predicted,
                row.confidence,
                np.frombuffer(row.image, np.uint8).reshape(28, 28),
                bool(row.hidden),
                row.created_at,
            )
            for row in rows
        ]

    def png(self, class_id: int, drawing_id: int) -> bytes | None:
        with self._engine.connect() as connection:
            return connection.execute(sa.select(drawings.c.png).where(drawings.c.id == drawing_id, drawings.c.class_id == class_id)).scalar()

    def arrays(self, class_id: int) -> ClassDrawings:
        """The visible drawings as arrays, oldest first (for scoring, training and export)."""
        query = (
            sa.select(drawings.c.id, drawings.c.image, drawings.c.label, drawings.c.student_id)
            .where(drawings.c.class_id == class_id, drawings.c.hidden.is_(False))
            .order_by(drawings.c.id)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        if not rows:
            empty = np.zeros((0,), np.int64)
            return ClassDrawings(empty, np.zeros((0, 28, 28), np.uint8), np.zeros((0,), np.uint8), empty)
        return ClassDrawings(
            np.array([row.id for row in rows], np.int64),
            np.stack([np.frombuffer(row.image, np.uint8).reshape(28, 28) for row in rows]),
            np.array([row.label for row in rows], np.uint8),
            np.array([row.student_id for row in rows], np.int64),
        )

    def version(self, class_id: int) -> tuple[int, int, int]:
        """Changes whenever the class's visible drawings change (for caches): count, newest id, hidden count."""
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(sa.func.count(), sa.func.max(drawings.c.id), sa.func.sum(sa.cast(drawings.c.hidden, sa.Integer))).where(
                    drawings.c.class_id == class_id
                )
            ).first()
        return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)

    # Shared runs

    def share_run(self, class_id: int, run_id: int, student_id: int | None) -> None:
        with self._engine.begin() as connection:
            exists = connection.execute(
                sa.select(class_runs.c.run_id).where(class_runs.c.class_id == class_id, class_runs.c.run_id == run_id)
            ).first()
            if exists is None:
                connection.execute(class_runs.insert().values(class_id=class_id, run_id=run_id, student_id=student_id, shared_at=self.clock()))

    def shared_runs(self, class_id: int) -> list[tuple[int, str | None]]:
        """(run id, nickname of who shared it) for each run shared with the class, oldest first."""
        query = (
            sa.select(class_runs.c.run_id, students.c.nickname)
            .select_from(class_runs.outerjoin(students, students.c.id == class_runs.c.student_id))
            .where(class_runs.c.class_id == class_id)
            .order_by(class_runs.c.shared_at)
        )
        with self._engine.connect() as connection:
            return [(row.run_id, row.nickname) for row in connection.execute(query).all()]


def _class_info(row) -> ClassInfo:
    return ClassInfo(
        row.id, row.code, row.name, row.model_name, bool(row.is_open), bool(row.show_names), row.created_at, row.max_epochs, row.train_images
    )


# Figures and exports


@dataclass(frozen=True)
class ClassScore:
    """A model on a class's drawings: accuracy, confusion matrix (rows: drawn, columns: answered), wrong drawings."""

    drawings: int
    correct: int
    confusion: np.ndarray
    predicted: np.ndarray

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.drawings if self.drawings else None


def score(probabilities: np.ndarray, labels: np.ndarray) -> ClassScore:
    """Score a model's probabilities for the class's drawings against what the students drew."""
    predicted = np.argmax(probabilities, axis=1) if len(labels) else np.zeros((0,), np.int64)
    confusion = np.zeros((10, 10), np.int64)
    np.add.at(confusion, (labels.astype(np.int64), predicted.astype(np.int64)), 1)
    return ClassScore(len(labels), int(np.sum(predicted == labels)), confusion, predicted)


def export_npz(data: ClassDrawings) -> bytes:
    """Keras' mnist.npz layout: x_train, y_train, x_test, y_test (the class's two splits), uint8."""
    train, test = data.split("train"), data.split("test")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x_train=train.images, y_train=train.labels, x_test=test.images, y_test=test.labels)
    return buffer.getvalue()


def export_idx_zip(data: ClassDrawings, folder: str = "class-drawings") -> bytes:
    """A zip of MNIST's four gzipped IDX files (train-*, t10k-*: the class's two splits), readable by `mnistlab.idx`."""
    import tempfile
    from pathlib import Path

    train, test = data.split("train"), data.split("test")
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as temporary, zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for prefix, part in (("train", train), ("t10k", test)):
            for kind, array in (("images-idx3", part.images), ("labels-idx1", part.labels)):
                name = f"{prefix}-{kind}-ubyte"
                path = Path(temporary) / name
                write_idx(path, array)
                archive.writestr(f"{folder}/{name}.gz", gzip.compress(path.read_bytes(), mtime=0))
    return buffer.getvalue()
