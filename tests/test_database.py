"""The database: created on first start, upgraded from older versions, refused when it is not ours or too new."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mnistlab import database as database_module
from mnistlab.database import Database, DatabaseVersionError
from mnistlab.runs import RunStore
from mnistlab.settings import TrainingSettings


def test_first_start_creates_the_schema_in_wal_mode(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'new' / 'lab.db'}")
    assert database.version_found == 0
    with database.engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names())
        assert {"mnistlab_meta", "runs"} <= tables
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        version = connection.execute(sa.select(database_module.meta.c.value)).scalar()
    assert int(version) == database_module.SCHEMA_VERSION
    # Opening it again finds the current version and changes nothing.
    assert Database(database.url).version_found == database_module.SCHEMA_VERSION


def downgrade(url: str, to_version: int) -> None:
    """Turn a current database into one an older MNIST Lab wrote: without the columns, indexes and tables of later versions."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP INDEX IF EXISTS students_class_nickname_key")
        connection.exec_driver_sql("DROP INDEX IF EXISTS ix_runs_training_key")
        for table, column in (
            ("runs", "training_key"),
            ("runs", "shared_from"),
            ("classes", "max_epochs"),
            ("classes", "train_images"),
            ("students", "nickname_key"),
            ("students", "left_at"),
            ("classes", "categories"),
            ("drawings", "category_set"),
        ):
            connection.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        connection.exec_driver_sql("DROP TABLE servers")
        connection.exec_driver_sql("DROP TABLE races")
        for column in ("sent_page", "sent_query", "sent_step", "sent_at", "paused"):
            connection.exec_driver_sql(f"ALTER TABLE classes DROP COLUMN {column}")
        if to_version < 2:
            for table in ("class_runs", "drawings", "students", "classes"):
                connection.exec_driver_sql(f"DROP TABLE {table}")
        connection.execute(sa.text("UPDATE mnistlab_meta SET value = :version"), {"version": str(to_version)})
    engine.dispose()


def test_an_older_database_is_upgraded_keeping_its_runs(database_url, tmp_path, monkeypatch):
    url = database_url
    old = RunStore(Database(url), tmp_path)
    run_id = old.create("browser:a", TrainingSettings(), "server")
    old.database.dispose()
    database_module._databases.pop(url, None)
    applied = []

    def add_notes(connection):
        applied.append(True)
        connection.exec_driver_sql("ALTER TABLE runs ADD COLUMN notes TEXT")

    current = database_module.SCHEMA_VERSION
    monkeypatch.setattr(database_module, "SCHEMA_VERSION", current + 1)
    monkeypatch.setitem(database_module.MIGRATIONS, current + 1, add_notes)
    upgraded = Database(url)
    assert applied == [True] and upgraded.version_found == current
    with upgraded.engine.connect() as connection:
        assert "notes" in {column["name"] for column in sa.inspect(connection).get_columns("runs")}
        assert connection.execute(sa.text("SELECT value FROM mnistlab_meta")).scalar() == str(current + 1)
    assert RunStore(upgraded, tmp_path).get(run_id).owner == "browser:a"
    upgraded.dispose()


def test_a_database_from_a_newer_version_is_refused(database_url):
    url = database_url
    Database(url).dispose()
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE mnistlab_meta SET value = '999'"))
    engine.dispose()
    with pytest.raises(DatabaseVersionError, match="newer MNIST Lab"):
        Database(url)


def test_tables_without_a_version_are_refused_not_dropped(database_url):
    url = database_url
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE runs (id INTEGER PRIMARY KEY, owner TEXT)"))
        connection.execute(sa.text("INSERT INTO runs (id, owner) VALUES (1, 'someone')"))
    with pytest.raises(DatabaseVersionError, match="no version record"):
        Database(url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT owner FROM runs")).scalar() == "someone"
    engine.dispose()


def test_a_missing_upgrade_step_is_refused(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    Database(url).dispose()
    monkeypatch.setattr(database_module, "SCHEMA_VERSION", database_module.SCHEMA_VERSION + 5)
    with pytest.raises(DatabaseVersionError, match="no upgrade from schema version"):
        Database(url)


def test_run_ids_are_never_reused(database_url, tmp_path):
    store = RunStore(Database(database_url), tmp_path)
    first = store.create("browser:a", TrainingSettings(), "server")
    with store.database.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM runs"))
    assert store.create("browser:a", TrainingSettings(), "server") > first


def test_settings_round_trip_through_the_database(database_url, tmp_path):
    from mnistlab.models import ConvBlock, ModelConfig

    store = RunStore(Database(database_url), tmp_path)
    settings = TrainingSettings(
        dataset="fashion_mnist",
        arch="custom",
        target_accuracy=0.9,
        max_epochs=3,
        model_config=ModelConfig(conv_blocks=(ConvBlock(16, 5, False),), dense_units=(64, 32), dropout=0.2, mirror=True),
    )
    run_id = store.create("browser:a", settings, "server")
    assert store.get(run_id).settings == settings


def test_a_version_1_database_gains_the_later_tables_and_keeps_its_runs(database_url):
    """The real upgrades this version ships: runs written before classroom mode stay, the class tables appear, and so
    do version 3's columns and servers table."""
    url = database_url
    Database(url).dispose()
    database_module._databases.pop(url, None)
    downgrade(url, 1)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO runs (owner, server, status, phase, dataset, arch, settings, created_at) "
                "VALUES ('browser:old', 's', 'finished', 'done', 'mnist', 'dense', '{}', 1.0)"
            )
        )
    engine.dispose()
    database = Database(url)
    assert database.version_found == 1
    tables = set(sa.inspect(database.engine).get_table_names())
    assert {"classes", "students", "drawings", "class_runs", "servers", "races"} <= tables
    with database.engine.connect() as connection:
        assert connection.execute(sa.select(database_module.runs.c.owner)).scalar_one() == "browser:old"
        assert "training_key" in {column["name"] for column in sa.inspect(connection).get_columns("runs")}
    database.dispose()
    database_module._databases.pop(url, None)
    assert Database(url).version_found == database_module.SCHEMA_VERSION == 6
    with Database(url).engine.connect() as connection:
        assert "categories" in {column["name"] for column in sa.inspect(connection).get_columns("classes")}
        assert "category_set" in {column["name"] for column in sa.inspect(connection).get_columns("drawings")}


def test_a_version_2_class_keeps_two_names_an_older_version_let_through_and_takes_no_third(database_url):
    """Version 2 compared nicknames with SQLite's ASCII-only lower(): "Ömer" and "ÖMER" could both join. The upgrade
    keeps both students (and their drawings), and from then on a third "ömer" is refused."""
    from mnistlab.classroom import ClassStore

    url = database_url
    classes = ClassStore(Database(url))
    info, _key = classes.create_class("Old")
    classes.database.dispose()
    database_module._databases.pop(url, None)
    downgrade(url, 2)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for number, name in enumerate(("Ömer", "ÖMER")):
            connection.execute(
                sa.text("INSERT INTO students (class_id, nickname, owner, joined_at) VALUES (:class_id, :name, :owner, 1.0)"),
                {"class_id": info.class_id, "name": name, "owner": f"browser:{number}"},
            )
    engine.dispose()
    upgraded = ClassStore(Database(url))
    assert [student.nickname for student in upgraded.students(info.class_id)] == ["Ömer", "ÖMER"]
    with pytest.raises(ValueError, match="already called"):
        upgraded.join(info.code, "ömer", "browser:third")


def test_a_version_3_database_gets_confusable_skeletons_and_keeps_every_student(database_url):
    """Version 4 compares nicknames by UTS #39 skeletons. Students an older version let in side by side ("Ali" and "AIi")
    both stay, and from now on a look-alike of either is refused."""
    from mnistlab.classroom import ClassStore

    url = database_url
    database = Database(url)
    store = ClassStore(database)
    info, _key = store.create_class("Old class")
    store.join(info.code, "Ali", "browser:1")
    database.dispose()
    database_module._databases.pop(url, None)
    engine = sa.create_engine(url)
    with engine.begin() as connection:  # what version 3 wrote: no skeleton column, "AIi" let in beside "Ali"
        connection.exec_driver_sql("DROP INDEX students_class_nickname_skeleton")
        connection.exec_driver_sql("ALTER TABLE students DROP COLUMN nickname_skeleton")
        student_columns = "class_id, nickname, nickname_key, owner, joined_at"
        connection.exec_driver_sql(f"INSERT INTO students ({student_columns}) VALUES ({info.class_id}, 'AIi', 'aii', 'browser:2', 1.0)")
        connection.execute(sa.text("UPDATE mnistlab_meta SET value = '3' WHERE key = 'schema_version'"))
    engine.dispose()
    upgraded = Database(url)
    assert upgraded.version_found == 3
    store = ClassStore(upgraded)
    assert [student.nickname for student in store.students(info.class_id)] == ["Ali", "AIi"]
    with pytest.raises(ValueError, match="looks too much like"):
        store.join(info.code, "ɑli", "browser:3")
    upgraded.dispose()


def _open(url: str, start, results) -> None:
    """One process opening a new database at the same moment as the others (see the test below)."""
    start.wait()
    try:
        Database(url)
        results.put("ok")
    except Exception as error:  # noqa: BLE001 - reported to the test
        results.put(f"{type(error).__name__}: {error}")


def test_processes_opening_a_new_sqlite_database_at_once_all_find_its_schema(tmp_path):
    """CI: the server's warm-up created the database as a test opened it; the test saw the tables half made ("table
    mnistlab_meta already exists", then "no schema version record"). Creating the schema is one transaction that holds
    the database's write lock, so the others wait for it and then find it whole."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    for attempt in range(6):
        url = f"sqlite:///{tmp_path / f'new-{attempt}.db'}"
        start, results = context.Barrier(4), context.Queue()
        processes = [context.Process(target=_open, args=(url, start, results)) for _ in range(4)]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=120) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        assert outcomes == ["ok"] * 4, outcomes
        assert Database(url).version_found == database_module.SCHEMA_VERSION
