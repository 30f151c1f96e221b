"""What a school keeps about its students, and for how long.

MNIST Lab keeps a class (its name, its students' nicknames, their drawings) and runs (settings,
curves, results, model files) until someone deletes them. Two ways to delete them:

- The teacher deletes a class with everything in it: its students, their drawings, its shares, and
  the runs its students trained while they were in it (their rows and model files). Runs a student
  trained before joining or after leaving stay theirs.
- A school that must keep data no longer than some days sets `MNISTLAB_KEEP_DAYS`: classes and
  runs older than that are removed (the app's own quick models, which hold no one's data, stay).
  The teacher's dashboard says so a week before (`deletion_notice`).

The rules are plain functions over times; `class_run_ids`, `delete_class_rows` and `delete_old_rows`
change the database in the caller's transaction and return the run ids whose folders the caller
removes (`mnistlab.runs.RunStore.remove_folders`) once the transaction is committed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mnistlab.database import class_runs, classes, drawings, races, runs, students
from mnistlab.runs import ACTIVE

DAY = 86_400.0
NOTICE_DAYS = 7  # the teacher is told this many days before a class is removed


def deletion_time(created_at: float, keep_days: int | None) -> float | None:
    """When something made at `created_at` is removed (None: the server keeps everything)."""
    return None if keep_days is None else created_at + keep_days * DAY


def deletion_notice(created_at: float, keep_days: int | None, now: float | None = None) -> float | None:
    """The time a class will be removed, once that is a week away or less (None: nothing to tell yet)."""
    when = deletion_time(created_at, keep_days)
    now = time.time() if now is None else now
    return when if when is not None and when - now <= NOTICE_DAYS * DAY else None


@dataclass(frozen=True)
class Forgotten:
    """What a deletion removed: classes, and runs (whose folders the caller removes)."""

    class_ids: tuple[int, ...] = ()
    run_ids: tuple[int, ...] = ()


def class_run_ids(connection: Connection, class_id: int, now: float | None = None) -> list[int]:
    """The runs that belong to a class: those its students trained while they were in it. A run trained before joining
    stays its owner's, shared with the class or not; runs still waiting or training, and the app's own shared quick
    models, are left out."""
    now = time.time() if now is None else now
    members = connection.execute(sa.select(students.c.owner, students.c.joined_at, students.c.left_at).where(students.c.class_id == class_id))
    periods = [sa.and_(runs.c.owner == owner, runs.c.created_at >= joined, runs.c.created_at <= (left or now)) for owner, joined, left in members]
    if not periods:
        return []
    query = sa.select(runs.c.id).where(sa.or_(*periods), runs.c.status.not_in(ACTIVE), runs.c.shared_key.is_(None)).order_by(runs.c.id)
    return list(connection.execute(query).scalars())


def _delete_runs(connection: Connection, run_ids: list[int]) -> None:
    for start in range(0, len(run_ids), 500):  # SQLite allows a limited number of parameters in one statement
        chunk = run_ids[start : start + 500]
        connection.execute(class_runs.delete().where(class_runs.c.run_id.in_(chunk)))
        connection.execute(runs.delete().where(runs.c.id.in_(chunk)))


def delete_class_rows(connection: Connection, class_id: int, now: float | None = None) -> Forgotten:
    """Delete a class with its students, drawings, shares, races and runs (see `class_run_ids`)."""
    run_ids = class_run_ids(connection, class_id, now)
    _delete_runs(connection, run_ids)
    for table in (class_runs, drawings, students, races):
        connection.execute(table.delete().where(table.c.class_id == class_id))
    connection.execute(classes.delete().where(classes.c.id == class_id))
    return Forgotten((class_id,), tuple(run_ids))


def delete_old_rows(connection: Connection, keep_days: int, now: float | None = None) -> Forgotten:
    """Delete the classes and runs made more than `keep_days` days ago (runs still waiting or training, and the app's
    own shared quick models, stay)."""
    now = time.time() if now is None else now
    cutoff = now - keep_days * DAY
    class_ids, run_ids = [], []
    for class_id in connection.execute(sa.select(classes.c.id).where(classes.c.created_at < cutoff)).scalars().all():
        forgotten = delete_class_rows(connection, class_id, now=cutoff)  # its runs made before the cutoff, not yesterday's
        class_ids.append(class_id)
        run_ids.extend(forgotten.run_ids)
    old = sa.select(runs.c.id).where(runs.c.created_at < cutoff, runs.c.status.not_in(ACTIVE), runs.c.shared_key.is_(None))
    old_ids = list(connection.execute(old).scalars().all())
    _delete_runs(connection, old_ids)
    return Forgotten(tuple(class_ids), tuple(sorted(set(run_ids) | set(old_ids))))
