"""Classroom mode: a class that joins with a code, draws labelled digits, and measures models on them.

`ClassStore` keeps classes in the app's database. It is the composition of five parts,
each a module of its own:

- `mnistlab.class_identity`: the class itself: join code, teacher key and tokens, its
  settings (class model, open to drawings, nicknames shown, a lesson's budget), deleting it;
- `mnistlab.class_members`: its students (nicknames, joins, leaves, the roster) and the runs
  they share with the class;
- `mnistlab.class_drawings`: its drawings (prompts, saving, hiding, the two halves, scoring
  a model on them, exports);
- `mnistlab.class_races`: its races (the teacher starts one; `mnistlab.race` has their rules);
- `mnistlab.class_pace`: where the teacher sent the class, and "eyes on the projector".

The names pages and tests use are importable from here.
"""

from __future__ import annotations

import time

from mnistlab.class_drawings import (
    DIGITS,
    MAX_DRAWINGS_PER_CLASS,
    MAX_PNG_BYTES,
    SECONDS_BETWEEN_DRAWINGS,
    ClassDrawings,
    ClassDrawingStore,
    ClassLimitError,
    ClassScore,
    Drawing,
    check_digit,
    export_category_npz,
    export_category_zip,
    export_idx_zip,
    export_npz,
    score,
    split_of,
)
from mnistlab.class_identity import (
    CLASS_NAME_LENGTH,
    CODE_ALPHABET,
    CODE_LENGTH,
    TOKEN_LIFETIME,
    TOKEN_PREFIX,
    ClassIdentity,
    ClassInfo,
    TeacherKeyError,
    check_class_name,
    normalise_code,
)
from mnistlab.class_members import NICKNAME_LENGTH, NICKNAME_PATTERN, ClassMembers, RosterRow, Student, UnknownCodeError, check_nickname
from mnistlab.class_pace import ClassPace
from mnistlab.class_races import ClassRaces
from mnistlab.database import Database

__all__ = [
    "CLASS_NAME_LENGTH",
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "DIGITS",
    "MAX_DRAWINGS_PER_CLASS",
    "MAX_PNG_BYTES",
    "NICKNAME_LENGTH",
    "NICKNAME_PATTERN",
    "SECONDS_BETWEEN_DRAWINGS",
    "TOKEN_LIFETIME",
    "TOKEN_PREFIX",
    "ClassDrawings",
    "ClassInfo",
    "ClassLimitError",
    "ClassScore",
    "ClassStore",
    "Drawing",
    "RosterRow",
    "Student",
    "TeacherKeyError",
    "UnknownCodeError",
    "check_class_name",
    "check_digit",
    "check_nickname",
    "export_category_npz",
    "export_category_zip",
    "export_idx_zip",
    "export_npz",
    "normalise_code",
    "score",
    "split_of",
]


class ClassStore(ClassIdentity, ClassMembers, ClassDrawingStore, ClassRaces, ClassPace):
    """Classes, students, drawings, shared runs and races in the app's database."""

    def __init__(self, database: Database, clock=time.time):
        self.database = database
        self.clock = clock

    @property
    def _engine(self):
        return self.database.engine
