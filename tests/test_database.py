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


def test_an_older_database_is_upgraded_keeping_its_runs(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    old = RunStore(Database(url), tmp_path)
    run_id = old.create("browser:a", TrainingSettings(), "server")
    old.database.dispose()
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


def test_a_database_from_a_newer_version_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    Database(url).dispose()
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE mnistlab_meta SET value = '999'"))
    with pytest.raises(DatabaseVersionError, match="newer MNIST Lab"):
        Database(url)


def test_tables_without_a_version_are_refused_not_dropped(tmp_path):
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE runs (id INTEGER PRIMARY KEY, owner TEXT)"))
        connection.execute(sa.text("INSERT INTO runs (owner) VALUES ('someone')"))
    with pytest.raises(DatabaseVersionError, match="no version record"):
        Database(url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT owner FROM runs")).scalar() == "someone"


def test_a_missing_upgrade_step_is_refused(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    Database(url).dispose()
    monkeypatch.setattr(database_module, "SCHEMA_VERSION", database_module.SCHEMA_VERSION + 5)
    with pytest.raises(DatabaseVersionError, match="no upgrade from schema version"):
        Database(url)


def test_run_ids_are_never_reused(tmp_path):
    store = RunStore(Database(f"sqlite:///{tmp_path / 'lab.db'}"), tmp_path)
    first = store.create("browser:a", TrainingSettings(), "server")
    with store.database.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM runs"))
    assert store.create("browser:a", TrainingSettings(), "server") > first


def test_settings_round_trip_through_the_database(tmp_path):
    from mnistlab.models import ConvBlock, ModelConfig

    store = RunStore(Database(f"sqlite:///{tmp_path / 'lab.db'}"), tmp_path)
    settings = TrainingSettings(
        dataset="fashion_mnist",
        arch="custom",
        target_accuracy=0.9,
        max_epochs=3,
        model_config=ModelConfig(conv_blocks=(ConvBlock(16, 5, False),), dense_units=(64, 32), dropout=0.2, mirror=True),
    )
    run_id = store.create("browser:a", settings, "server")
    assert store.get(run_id).settings == settings


def test_a_version_1_database_gains_the_class_tables_and_keeps_its_runs(tmp_path):
    """The real upgrade this version ships: runs written before classroom mode stay, the class tables appear."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        database_module.metadata.create_all(connection, tables=[database_module.meta, database_module.runs])
        connection.execute(database_module.meta.insert().values(key="schema_version", value="1"))
        connection.execute(
            database_module.runs.insert().values(
                owner="browser:old", server="s", status="finished", phase="done", dataset="mnist", arch="dense", settings={}, created_at=1.0
            )
        )
    engine.dispose()
    database = Database(url)
    assert database.version_found == 1
    tables = set(sa.inspect(database.engine).get_table_names())
    assert {"classes", "students", "drawings", "class_runs"} <= tables
    with database.engine.connect() as connection:
        assert connection.execute(sa.select(database_module.runs.c.owner)).scalar_one() == "browser:old"
    assert Database(url).version_found == database_module.SCHEMA_VERSION == 2
