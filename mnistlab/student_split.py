"""An honest test for a class's own set: split by student, not by drawing.

A model that trained on some of Ali's drawings and is tested on his others has seen his
hand; what a class wants to know is how it reads a classmate it never saw. So each
student's drawings are all on one side. Students are put in an order of their own (a
hash of the class's seed and the student), and the test side takes students from the
start of that order until it holds about `TEST_SHARE` of the drawings: at least one
student, never all of them. A student's place in the order does not depend on the
others, so a class that grows keeps most students where they were; each training
records the split it used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from mnistlab.i18n import _, ngettext, number

TEST_SHARE = 0.25


@dataclass(frozen=True)
class StudentSplit:
    """Which students' drawings train, which test, and how many drawings each side has."""

    train_students: frozenset[str]
    test_students: frozenset[str]
    train_drawings: int
    test_drawings: int

    def side(self, student: str) -> str:
        """ "train" or "test"; a student who had no drawings at the split trains."""
        return "test" if student in self.test_students else "train"

    def tested_on(self) -> str:
        """The test in plain words: "tested on 124 drawings by 5 classmates it never saw"."""
        drawings = ngettext("{count} drawing", "{count} drawings", self.test_drawings).format(count=number(self.test_drawings))
        classmates = ngettext("{count} classmate", "{count} classmates", len(self.test_students)).format(count=len(self.test_students))
        return _("tested on {drawings} by {classmates} it never saw").format(drawings=drawings, classmates=classmates)


def _order(seed: str, student: str) -> str:
    return hashlib.sha256(f"{seed}\x00{student}".encode()).hexdigest()


def split_by_student(drawings: Mapping[str, int], seed: str, share: float = TEST_SHARE) -> StudentSplit:
    """Each student (with how many drawings they made) on one side: the test side about `share` of the drawings, at
    least one student, never every student. A ValueError when fewer than two students drew."""
    if not 0 < share < 1:
        raise ValueError(f"The test share is a fraction between 0 and 1, not {share}.")
    drew = {student: count for student, count in drawings.items() if count > 0}
    if len(drew) < 2:
        raise ValueError(
            ngettext(
                "An honest test needs drawings by at least 2 students: one to learn from, one to test on ({count} student has drawn).",
                "An honest test needs drawings by at least 2 students: one to learn from, one to test on ({count} students have drawn).",
                len(drew),
            ).format(count=len(drew))
        )
    total = sum(drew.values())
    ordered = sorted(drew, key=lambda student: _order(seed, student))
    test: list[str] = []
    held = 0
    for student in ordered[:-1]:  # never every student
        if test and held + drew[student] / 2 > share * total:
            break  # the next student would take the test side further past its share than short of it
        test.append(student)
        held += drew[student]
    tested = frozenset(test)
    return StudentSplit(frozenset(drew) - tested, tested, total - held, held)
