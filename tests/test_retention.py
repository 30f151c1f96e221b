"""What a school keeps (issue 35): a teacher deletes a class with everything in it, MNISTLAB_KEEP_DAYS removes old classes
and runs, and the teacher is told a week before. On SQLite and on a real PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from mnistlab.classroom import ClassStore
from mnistlab.config import ServerConfig
from mnistlab.database import Database, drawings, runs, students
from mnistlab.retention import DAY, delete_old_rows, deletion_notice, deletion_time
from mnistlab.runs import RunStore

NOW = 1_800_000_000.0


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def add_run(database: Database, runs_dir, owner: str, created_at: float, status: str = "finished", shared_key: str | None = None) -> int:
    """A run row made at `created_at`, with a model file in its folder."""
    with database.engine.begin() as connection:
        run_id = connection.execute(
            runs.insert().values(
                owner=owner,
                server="s",
                status=status,
                phase="",
                dataset="mnist",
                arch="dense",
                settings={},
                created_at=created_at,
                shared_key=shared_key,
            )
        ).inserted_primary_key[0]
    folder = runs_dir / str(run_id)
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"a model")
    return int(run_id)


def run_ids(database: Database) -> list[int]:
    with database.engine.connect() as connection:
        return sorted(connection.execute(sa.select(runs.c.id)).scalars())


def test_the_teacher_is_told_a_week_before_a_class_is_removed():
    assert deletion_time(NOW, None) is None and deletion_notice(NOW, None, NOW + 1000 * DAY) is None
    assert deletion_time(NOW, 30) == NOW + 30 * DAY
    assert deletion_notice(NOW, 30, now=NOW + 22 * DAY) is None  # 8 days before: nothing yet
    assert deletion_notice(NOW, 30, now=NOW + 23 * DAY) == NOW + 30 * DAY  # a week before
    assert deletion_notice(NOW, 3, now=NOW) == NOW + 3 * DAY  # a server that keeps less than a week says it at once


def test_keep_days_is_read_from_the_environment_and_bad_values_are_said():
    assert ServerConfig.from_environment({}).keep_days is None
    assert ServerConfig.from_environment({"MNISTLAB_KEEP_DAYS": " 30 "}).keep_days == 30
    for bad in ("a month", "0", "-5", "1.5"):
        with pytest.raises(ValueError, match="MNISTLAB_KEEP_DAYS must be a whole number from 1 to 3650"):
            ServerConfig.from_environment({"MNISTLAB_KEEP_DAYS": bad})


def test_deleting_a_class_deletes_the_runs_its_students_trained_in_it_with_their_files(database_url, tmp_path):
    database = Database(database_url)
    clock = Clock(NOW)
    store = ClassStore(database, clock=clock)
    keeper = RunStore(database, tmp_path, tmp_path / "runs")
    info, key = store.create_class("7B")
    other, _ = store.create_class("8A")
    before = add_run(database, keeper.runs_dir, "browser:ada", NOW - 100)  # trained before Ada joined: stays hers
    ada = store.join(info.code, "Ada", "browser:ada")
    bob = store.join(other.code, "Bob", "browser:bob")
    store.save_drawing(ada.student_id, 1, np.full((28, 28), 9, np.uint8))
    store.save_drawing(bob.student_id, 1, np.full((28, 28), 9, np.uint8))
    in_class = add_run(database, keeper.runs_dir, "browser:ada", NOW + 10)
    training = add_run(database, keeper.runs_dir, "browser:ada", NOW + 20, status="running")  # still training: left alone
    quick = add_run(database, keeper.runs_dir, "browser:ada", NOW + 30, shared_key="quick:digits")  # the app's own
    bobs = add_run(database, keeper.runs_dir, "browser:bob", NOW + 10)
    store.share_run(info.class_id, before, ada.student_id)
    store.share_run(info.class_id, in_class, ada.student_id)

    clock.now = NOW + 60
    forgotten = store.delete_class(info.class_id, key)
    keeper.remove_folders(forgotten.run_ids)

    assert forgotten.class_ids == (info.class_id,) and forgotten.run_ids == (in_class,)
    assert run_ids(database) == sorted([before, training, quick, bobs])
    assert not (keeper.runs_dir / str(in_class)).exists() and (keeper.runs_dir / str(before) / "model.keras").is_file()
    with database.engine.connect() as connection:
        assert connection.execute(sa.select(students.c.nickname)).scalars().all() == ["Bob"]
        assert connection.execute(sa.select(sa.func.count()).select_from(drawings)).scalar() == 1
    assert store.get(info.class_id) is None and store.get(other.class_id) == other


def test_keep_days_removes_classes_and_runs_older_than_that_and_nothing_newer(database_url, tmp_path):
    database = Database(database_url)
    clock = Clock(NOW - 40 * DAY)
    store = ClassStore(database, clock=clock)
    keeper = RunStore(database, tmp_path, tmp_path / "runs")
    old_class, _ = store.create_class("Last term")
    old_student = store.join(old_class.code, "Ada", "browser:ada")
    store.save_drawing(old_student.student_id, 3, np.full((28, 28), 9, np.uint8))
    old_run = add_run(database, keeper.runs_dir, "browser:ada", NOW - 39 * DAY)
    old_alone = add_run(database, keeper.runs_dir, "browser:zeynep", NOW - 31 * DAY)  # no class: a run of its own
    old_quick = add_run(database, keeper.runs_dir, "server", NOW - 35 * DAY, shared_key="quick:digits")
    clock.now = NOW - 2 * DAY
    new_class, _ = store.create_class("This week")
    store.join(new_class.code, "Ada", "browser:ada")
    new_run = add_run(database, keeper.runs_dir, "browser:ada", NOW - DAY)

    with database.engine.begin() as connection:
        forgotten = delete_old_rows(connection, keep_days=30, now=NOW)
    keeper.remove_folders(forgotten.run_ids)

    assert forgotten.class_ids == (old_class.class_id,)
    assert forgotten.run_ids == tuple(sorted([old_run, old_alone]))
    assert run_ids(database) == sorted([old_quick, new_run])
    assert store.get(old_class.class_id) is None and store.get(new_class.class_id) is not None
    assert sorted(path.name for path in keeper.runs_dir.iterdir()) == sorted(str(run_id) for run_id in (old_quick, new_run))
    with database.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(drawings)).scalar() == 0
