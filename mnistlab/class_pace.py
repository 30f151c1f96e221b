"""Pacing a class from the teacher's screen: the step the class is sent to, and "eyes on the projector".

The teacher sends the class to a lesson step, or to any link of the app (`Direction`); each student's page then
offers it with one tap, and never takes a student away from a drawing or a training by itself. The teacher can also
pause every student's screen until they lift it. `ClassPace` is the part of `mnistlab.classroom.ClassStore` that
keeps both in the class's row; `direction_of_step`, `direction_of_link` and `is_on` are plain rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import sqlalchemy as sa

from mnistlab.database import classes
from mnistlab.i18n import _
from mnistlab.lessons import LESSONS, Lesson, Step
from mnistlab.links import COMMON_KEYS, PAGE_KEYS, read_link

MAX_LINK = 600


@dataclass(frozen=True)
class Direction:
    """Where the teacher sent the class: a page (its URL slug), its link's query, and the lesson step it is ("4.1":
    lesson 4's first step), if it is one."""

    page: str
    query: dict = field(default_factory=dict)
    step: str | None = None
    sent_at: float = 0.0


@dataclass(frozen=True)
class Pace:
    """The class's pace now: where it was sent (None: nowhere yet) and whether screens are paused."""

    direction: Direction | None = None
    paused: bool = False


def direction_of_step(lesson: Lesson, step: Step) -> Direction:
    return Direction(step.page, dict(step.query), f"{lesson.number}.{lesson.steps.index(step) + 1}")


def step_of(direction: Direction) -> tuple[Lesson, Step] | None:
    """The lesson step a direction names, if any."""
    if not direction.step:
        return None
    number, index = (int(part) for part in direction.step.split("."))
    lesson = next((lesson for lesson in LESSONS if lesson.number == number), None)
    return (lesson, lesson.steps[index - 1]) if lesson is not None and 0 < index <= len(lesson.steps) else None


def direction_of_link(text: str) -> Direction:
    """A link of this app ("http://server:8501/train?dataset=mnist&...", or "/train?...") as a direction; ValueError
    with what is wrong with it."""
    text = str(text or "").strip()
    if not text:
        raise ValueError(_("Paste a link of this app, such as one a lesson step opens."))
    if len(text) > MAX_LINK:
        raise ValueError(_("This link is too long to send ({count} characters; at most {most}).").format(count=len(text), most=MAX_LINK))
    parts = urlsplit(text if "://" in text or text.startswith("/") else "/" + text)
    page = parts.path.strip("/").split("/")[-1] or "home"
    if page not in PAGE_KEYS:
        raise ValueError(_("This is not a link to a page of MNIST Lab (its pages are: {pages}).").format(pages=", ".join(sorted(PAGE_KEYS))))
    query = {key: value for key, value in parse_qsl(parts.query) if key not in COMMON_KEYS}
    checked = read_link(page, query)
    if checked.notes:
        raise ValueError(_("This link cannot be sent as it is: {problem}").format(problem=checked.notes[0]))
    return Direction(page, query)


def is_on(direction: Direction, page: str, query) -> bool:
    """Whether a student's page shows where the class was sent: the same page, with every setting of its link."""
    here = page or "home"
    return here == direction.page and all(str(query.get(key)) == str(value) for key, value in direction.query.items())


class ClassPace:
    """Sending the class somewhere, pausing its screens, and reading both."""

    def send_class(self, class_id: int, key: str | None, direction: Direction) -> Pace:
        """Send the class there (the teacher only); students' pages offer it from now on."""
        self._require_teacher(class_id, key)
        now = self.clock()
        with self._engine.begin() as connection:
            connection.execute(
                classes.update()
                .where(classes.c.id == class_id)
                .values(sent_page=direction.page, sent_query=dict(direction.query), sent_step=direction.step, sent_at=now)
            )
        return self.pace(class_id)

    def pause_class(self, class_id: int, key: str | None, paused: bool) -> Pace:
        """Pause every student's screen ("eyes on the projector"), or lift the pause (the teacher only)."""
        self._require_teacher(class_id, key)
        with self._engine.begin() as connection:
            connection.execute(classes.update().where(classes.c.id == class_id).values(paused=bool(paused)))
        return self.pace(class_id)

    def pace(self, class_id: int) -> Pace:
        with self._engine.connect() as connection:
            row = connection.execute(
                sa.select(classes.c.sent_page, classes.c.sent_query, classes.c.sent_step, classes.c.sent_at, classes.c.paused).where(
                    classes.c.id == class_id
                )
            ).first()
        if row is None:
            return Pace()
        direction = Direction(row.sent_page, dict(row.sent_query or {}), row.sent_step, float(row.sent_at)) if row.sent_page else None
        return Pace(direction, bool(row.paused))
