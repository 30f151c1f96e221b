"""A class's drawings: the digits (or the class's own categories) students are asked for, saving them, hiding scribbles, the two halves, exports.

Students draw the digits they are asked for ("Draw a 7", each digit about equally often for
each student, in a shuffled order). Each drawing is kept with its label (the student's
correction if they drew another digit), the class model's answer at the time, the 28x28
image the network sees and the raw canvas PNG. The teacher hides a scribble: it leaves every
figure, export and split, and can be shown again.

The class's drawings are data: each belongs for good to one of two halves by its id (even
ids: the training half, odd ids: the test half), so a model trained with the class's
drawings is never scored on one it trained on; `score` measures a model on them; they
export as MNIST's IDX files or Keras' mnist.npz layout.

Limits: 20,000 drawings per class, one saved drawing a second per student, 2 MB per raw PNG.
`ClassDrawingStore` is the part of `mnistlab.classroom.ClassStore` that keeps them.
"""

from __future__ import annotations

import gzip
import io
import random
import zipfile
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from mnistlab.category_sets import CategorySet
from mnistlab.database import classes, drawings, students
from mnistlab.i18n import _, number
from mnistlab.idx import write_idx

MAX_DRAWINGS_PER_CLASS = 20_000
SECONDS_BETWEEN_DRAWINGS = 1.0
MAX_PNG_BYTES = 2 * 1024 * 1024
DIGITS = tuple(range(10))


class ClassLimitError(ValueError):
    """A class limit was reached (the class is closed or full, or a student saves too fast)."""


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

    def only(self, labels) -> ClassDrawings:
        """The drawings of these labels (a set's categories that are not removed)."""
        keep = np.isin(self.labels, np.array(list(labels), np.int64))
        return ClassDrawings(self.ids[keep], self.images[keep], self.labels[keep], self.student_ids[keep])

    def per_digit(self) -> dict[int, int]:
        counts = np.bincount(self.labels.astype(np.int64), minlength=10) if len(self) else np.zeros(10, np.int64)
        return {digit: int(counts[digit]) for digit in DIGITS}


def _of_set(category_set: int | None):
    """The drawings of the digits (None; drawings older than sets have none), or of the class's set number `category_set`."""
    return drawings.c.category_set.is_(None) if category_set is None else drawings.c.category_set == category_set


def split_of(drawing_id: int) -> str:
    return "train" if drawing_id % 2 == 0 else "test"


def check_digit(value, what: str = "A digit") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= 9:
        raise ValueError(f"{what} is a whole number from 0 to 9, not {value!r}.")
    return int(value)


class ClassDrawingStore:
    """The classes' drawings (a part of `ClassStore`: it needs `_engine`, `clock` and `_require_teacher`)."""

    def _drawn_for(self, connection, class_id: int) -> tuple[int | None, tuple[int, ...]]:
        """What the class draws now: (its set's number, the labels asked for), or (None, the digits)."""
        stored = connection.execute(sa.select(classes.c.categories).where(classes.c.id == class_id)).scalar()
        if not stored:
            return None, DIGITS
        return stored["set"], tuple(category.number for category in CategorySet.from_json(stored["categories"]).active)

    def tally(self, student_id: int) -> dict[int, int]:
        """How many drawings of each label the class draws now (a digit, or a category's number) this student has saved,
        by what they drew (hidden ones too: they drew them)."""
        with self._engine.connect() as connection:
            class_id = connection.execute(sa.select(students.c.class_id).where(students.c.id == student_id)).scalar()
            if class_id is None:
                return dict.fromkeys(DIGITS, 0)
            category_set, labels = self._drawn_for(connection, class_id)
            rows = connection.execute(
                sa.select(drawings.c.label, sa.func.count())
                .where(drawings.c.student_id == student_id, _of_set(category_set))
                .group_by(drawings.c.label)
            ).all()
        counts = dict.fromkeys(labels, 0)
        counts.update({int(label): int(count) for label, count in rows if int(label) in counts})
        return counts

    def next_prompt(self, student_id: int, generator: random.Random | None = None) -> int:
        """What to ask for next (a digit, or a category's number): one this student has drawn least often (by what they
        drew), at random among those. So each student draws every category about equally often, in a shuffled order."""
        tally = self.tally(student_id)
        fewest = min(tally.values())
        return (generator or random).choice([label for label, count in tally.items() if count == fewest])

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
        """Save one drawing of what the class draws now (a digit, or a category of its set: its number); `label` is the
        student's correction when they drew another one than `prompt`."""
        label = prompt if label is None else label
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
            category_set, labels = self._drawn_for(connection, student.class_id)
            if category_set is None:
                prompt, label = check_digit(prompt, "The digit asked for"), check_digit(label, "The digit drawn")
                predicted = None if predicted is None else check_digit(predicted, "The model's answer")
            else:
                for value in (prompt, label):
                    if value not in labels:
                        # The teacher removed that category while the student drew.
                        raise ValueError(_("That category is not in the class's set any more: draw the next one."))
                if predicted is not None and predicted not in labels:
                    predicted = None
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
                    category_set=category_set,
                )
            ).inserted_primary_key[0]

    def drawings(self, class_id: int, *, include_hidden: bool = False, limit: int | None = None, category_set: int | None = None) -> list[Drawing]:
        """The class's drawings of the digits (or of its set number `category_set`), newest first."""
        query = (
            sa.select(drawings, students.c.nickname)
            .join(students, students.c.id == drawings.c.student_id)
            .where(drawings.c.class_id == class_id, _of_set(category_set))
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

    def arrays(self, class_id: int, category_set: int | None = None) -> ClassDrawings:
        """The visible drawings of the digits (or of the class's set number `category_set`) as arrays, oldest first
        (for scoring, training and export)."""
        query = (
            sa.select(drawings.c.id, drawings.c.image, drawings.c.label, drawings.c.student_id)
            .where(drawings.c.class_id == class_id, drawings.c.hidden.is_(False), _of_set(category_set))
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

    def hidden(self, class_id: int, category_set: int | None = None) -> list[Drawing]:
        """The drawings the teacher hid, newest first (they can be shown again)."""
        return [drawing for drawing in self.drawings(class_id, include_hidden=True, category_set=category_set) if drawing.hidden]

    def hide_student_drawings(self, class_id: int, key: str | None, student_id: int, category_set: int | None = None, hidden: bool = True) -> int:
        """Hide (or show again) every drawing one student made of the digits (or of set `category_set`): a student who
        only scribbled, in one click, undone the same way. Returns how many drawings changed."""
        self._require_teacher(class_id, key)
        with self._engine.begin() as connection:
            return connection.execute(
                drawings.update()
                .where(
                    drawings.c.class_id == class_id,
                    drawings.c.student_id == student_id,
                    drawings.c.hidden.is_(not hidden),
                    _of_set(category_set),
                )
                .values(hidden=bool(hidden))
            ).rowcount

    def drawn_counts(self, class_id: int, category_set: int | None = None) -> dict[str, dict[int, int]]:
        """How many visible drawings each student made of each label (a digit, or a category's number), by nickname."""
        query = (
            sa.select(students.c.nickname, drawings.c.label, sa.func.count())
            .join(students, students.c.id == drawings.c.student_id)
            .where(drawings.c.class_id == class_id, drawings.c.hidden.is_(False), _of_set(category_set))
            .group_by(students.c.nickname, drawings.c.label)
        )
        counts: dict[str, dict[int, int]] = {}
        with self._engine.connect() as connection:
            for nickname, label, count in connection.execute(query).all():
                counts.setdefault(nickname, {})[int(label)] = int(count)
        return counts

    def hide_drawing(self, class_id: int, key: str | None, drawing_id: int, hidden: bool = True) -> None:
        self._require_teacher(class_id, key)
        with self._engine.begin() as connection:
            changed = connection.execute(
                drawings.update().where(drawings.c.id == drawing_id, drawings.c.class_id == class_id).values(hidden=bool(hidden))
            ).rowcount
        if not changed:
            raise ValueError(f"Drawing {drawing_id} is not in this class.")


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


def export_category_zip(data: ClassDrawings, names: dict[int, str], folder: str = "class-drawings") -> bytes:
    """A class set's drawings as PNGs, one folder per category: the layout `keras.utils.image_dataset_from_directory`
    reads. A file is named `student-S-drawing-D.png` (S numbers the students in the order they first drew, never a
    nickname), so a script can keep each student's drawings on one side of a split."""
    from PIL import Image

    students = {student: index + 1 for index, student in enumerate(dict.fromkeys(data.student_ids.tolist()))}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for drawing_id, image, label, student in zip(data.ids, data.images, data.labels, data.student_ids):
            png = io.BytesIO()
            Image.fromarray(np.asarray(image, np.uint8), mode="L").save(png, format="PNG")
            archive.writestr(f"{folder}/{names[int(label)]}/student-{students[int(student)]}-drawing-{int(drawing_id)}.png", png.getvalue())
    return buffer.getvalue()


def export_category_npz(data: ClassDrawings, names: dict[int, str]) -> bytes:
    """A class set's drawings as arrays: x (N x 28 x 28 uint8), y (0 .. categories - 1, in `class_names`' order),
    student (a number per student, never a nickname) and class_names."""
    order = sorted(names)
    index = {label: position for position, label in enumerate(order)}
    students = {student: position + 1 for position, student in enumerate(dict.fromkeys(data.student_ids.tolist()))}
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        x=data.images,
        y=np.array([index[int(label)] for label in data.labels], np.uint8),
        student=np.array([students[int(student)] for student in data.student_ids], np.int32),
        class_names=np.array([names[label] for label in order]),
    )
    return buffer.getvalue()
