"""A class's members: students who join with the code and a nickname, leave, or are removed; the runs they share.

No accounts and no personal data: a student is a nickname in a class, tied to the browser
that joined (its random key). The same browser joining again gets its place back, also after
a reload or leaving; a nickname another browser has, as a class reads it ("Ömer" is "ÖMER")
or as it looks ("AIi" is "Ali"; `mnistlab.nicknames`), is refused. The teacher's roster lists who is in the class with their
drawings and last activity. Students share finished runs with the class to compare them.

`ClassMembers` is the part of `mnistlab.classroom.ClassStore` that does this.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import sqlalchemy as sa

from mnistlab.class_results import Member
from mnistlab.database import class_runs, drawings, students
from mnistlab.i18n import _
from mnistlab.nicknames import mixed_scripts, nickname_key, same_letters, skeleton_key

NICKNAME_LENGTH = (1, 20)
# Letters of any alphabet (Turkish ç, ğ, ı, ö, ş, ü too), digits, spaces and - _ . only.
NICKNAME_PATTERN = re.compile(r"[^\W_]+(?:[ ._-]?[^\W_]+)*\.?")


class UnknownCodeError(ValueError):
    """No class has this join code."""


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
    owner: str = ""  # the student's browser (whose runs are theirs)

    @property
    def last_active(self) -> float:
        return max(self.joined_at, self.last_drawing_at or 0.0)


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


def _drawing_counts(class_id: int):
    """A subquery: each student of the class and the drawings they saved (student_id, drawings)."""
    return (
        sa.select(drawings.c.student_id, sa.func.count().label("drawings"))
        .where(drawings.c.class_id == class_id)
        .group_by(drawings.c.student_id)
        .subquery()
    )


class ClassMembers:
    """Students in classes, and the runs they share (a part of `ClassStore`: it needs `_engine`, `clock`, `by_code` and
    `_require_teacher`)."""

    def join(self, code: str, nickname: str, owner: str) -> Student:
        """Join the class with this code. The same browser joining again with its nickname gets its place back (also
        after leaving); a nickname another browser has, as a class reads it ("Ömer" is "ÖMER") or as it looks ("AIi"
        is "Ali"), is refused."""
        info = self.by_code(code)
        if info is None:
            raise UnknownCodeError(_("There is no class with this code. Check the code on the teacher's screen."))
        nickname = check_nickname(nickname)
        key, look = nickname_key(nickname), skeleton_key(nickname)
        taken = _("Someone in this class is already called {nickname}; pick another nickname.").format(nickname=nickname)
        try:
            with self._engine.begin() as connection:
                row = connection.execute(
                    sa.select(students)
                    .where(students.c.class_id == info.class_id, sa.or_(students.c.nickname_key == key, students.c.nickname_skeleton == look))
                    .order_by(students.c.id)
                ).first()
                if row is not None:
                    if row.owner != owner and not same_letters(row.nickname, nickname):
                        raise ValueError(
                            _("{nickname} looks too much like {existing}, who is already in this class; pick another nickname.").format(
                                nickname=nickname, existing=row.nickname
                            )
                        )
                    if row.owner != owner:
                        raise ValueError(taken)
                    connection.execute(students.update().where(students.c.id == row.id).values(left_at=None))
                    return Student(row.id, info.class_id, row.nickname)
                student_id = connection.execute(
                    students.insert().values(
                        class_id=info.class_id, nickname=nickname, nickname_key=key, nickname_skeleton=look, owner=owner, joined_at=self.clock()
                    )
                ).inserted_primary_key[0]
        except sa.exc.IntegrityError:
            raise ValueError(taken) from None  # another browser took it (or a look-alike of it) in the same moment
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

    def roster(self, class_id: int) -> list[RosterRow]:
        """The teacher's list: every student in the class, with their drawings and when they were last active."""
        counts = _drawing_counts(class_id)
        query = (
            sa.select(students.c.id, students.c.nickname, students.c.joined_at, students.c.last_drawing_at, counts.c.drawings, students.c.owner)
            .select_from(students.outerjoin(counts, counts.c.student_id == students.c.id))
            .where(students.c.class_id == class_id, students.c.left_at.is_(None))
            .order_by(students.c.id)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [RosterRow(row.id, row.nickname, int(row.drawings or 0), row.joined_at, row.last_drawing_at, row.owner) for row in rows]

    def members(self, class_id: int) -> list[Member]:
        """Every student the class had (also those who left), with their drawings: for the teacher's records."""
        counts = _drawing_counts(class_id)
        query = (
            sa.select(students.c.nickname, students.c.owner, students.c.joined_at, students.c.left_at, counts.c.drawings)
            .select_from(students.outerjoin(counts, counts.c.student_id == students.c.id))
            .where(students.c.class_id == class_id)
            .order_by(students.c.id)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [Member(row.nickname, row.owner, row.joined_at, row.left_at, int(row.drawings or 0)) for row in rows]

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
