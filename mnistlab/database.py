"""The database: one SQLAlchemy engine, the schema, and upgrades from older versions.

SQLite (a file under MNISTLAB_DATA_HOME, in WAL mode so pages read while a worker's
progress is written) is the default; any SQLAlchemy URL works, such as a PostgreSQL
shared by several app replicas. The schema is created on first start. Its version is
kept in the `mnistlab_meta` table: a database written by an older MNIST Lab is
upgraded in one transaction, and one written by a newer version, or tables this
version does not recognise, are refused with a message that says what to do. Nothing
is ever dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

SCHEMA_VERSION = 2

metadata = sa.MetaData()

meta = sa.Table(
    "mnistlab_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    # AUTOINCREMENT: SQLite never gives a deleted run's id to a new one, so ids stay unique for good.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("owner", sa.String(80), nullable=False, index=True),
    sa.Column("server", sa.String(300), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("phase", sa.String(40), nullable=False, default=""),
    sa.Column("dataset", sa.String(40), nullable=False),
    sa.Column("arch", sa.String(40), nullable=False),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("plan", sa.JSON),
    sa.Column("latest", sa.JSON),
    sa.Column("curve", sa.JSON),
    sa.Column("epochs", sa.JSON),
    sa.Column("result", sa.JSON),
    sa.Column("error", sa.Text),
    sa.Column("model_file", sa.String(500)),
    # Where it trained: "process 4242 on lab-server", or a Ray node.
    sa.Column("worker", sa.String(300)),
    # Runs that everyone shares (the quick model of a page) carry the key of their recipe.
    sa.Column("shared_key", sa.String(120), index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("ended_at", sa.Float),
    sa.Column("heartbeat_at", sa.Float),
    sqlite_autoincrement=True,
)

# Version 2: classes (classroom mode). A class, its students, their labelled drawings, and the runs shared with it.
# Deleting a class deletes its students, drawings and shares (ON DELETE CASCADE, and ClassStore deletes them too).
classes = sa.Table(
    "classes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("code", sa.String(12), nullable=False, unique=True),
    sa.Column("name", sa.String(80), nullable=False),
    # Only a hash of the teacher's key is kept: a copy of the database does not give the teacher's controls away.
    sa.Column("teacher_key_hash", sa.String(64), nullable=False),
    sa.Column("model_name", sa.String(200)),
    sa.Column("is_open", sa.Boolean, nullable=False, default=True),
    sa.Column("show_names", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sqlite_autoincrement=True,
)

students = sa.Table(
    "students",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("class_id", sa.Integer, sa.ForeignKey("classes.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("nickname", sa.String(40), nullable=False),
    sa.Column("owner", sa.String(80), nullable=False),
    sa.Column("joined_at", sa.Float, nullable=False),
    sa.Column("last_drawing_at", sa.Float),
    sa.UniqueConstraint("class_id", "nickname"),
    sqlite_autoincrement=True,
)

drawings = sa.Table(
    "drawings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("class_id", sa.Integer, sa.ForeignKey("classes.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("student_id", sa.Integer, sa.ForeignKey("students.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("prompt", sa.Integer, nullable=False),
    sa.Column("label", sa.Integer, nullable=False),  # what the student drew: the prompt, or their correction
    sa.Column("predicted", sa.Integer),  # the class model's answer when it was saved
    sa.Column("confidence", sa.Float),
    sa.Column("model_name", sa.String(200)),
    sa.Column("image", sa.LargeBinary, nullable=False),  # the 28x28 preprocessed image, 784 bytes
    sa.Column("png", sa.LargeBinary),  # the raw canvas as the student drew it
    sa.Column("hidden", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sqlite_autoincrement=True,
)

class_runs = sa.Table(
    "class_runs",
    metadata,
    sa.Column("class_id", sa.Integer, sa.ForeignKey("classes.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("student_id", sa.Integer, sa.ForeignKey("students.id", ondelete="SET NULL")),
    sa.Column("shared_at", sa.Float, nullable=False),
)


def _add_classes(connection: Connection) -> None:
    """Version 1 to 2: the classroom tables (the runs table is unchanged)."""
    metadata.create_all(connection, tables=[classes, students, drawings, class_runs])


# MIGRATIONS[n] upgrades a database from version n - 1 to version n.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {2: _add_classes}


class DatabaseVersionError(RuntimeError):
    """The database was written by another version of MNIST Lab and cannot be used as it is."""


def _make_engine(url: str) -> Engine:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _sqlite_settings(connection, _record):
        cursor = connection.cursor()
        # WAL: readers never wait for the writer; NORMAL sync is safe with WAL.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def _version(connection: Connection) -> int | None:
    row = connection.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).first()
    return int(row[0]) if row else None


def _set_version(connection: Connection, version: int) -> None:
    if _version(connection) is None:
        connection.execute(meta.insert().values(key="schema_version", value=str(version)))
    else:
        connection.execute(meta.update().where(meta.c.key == "schema_version").values(value=str(version)))


def prepare(engine: Engine) -> int:
    """Create the schema on first start, upgrade an older one, or refuse; returns the version found."""
    with engine.begin() as connection:
        tables = set(sa.inspect(connection).get_table_names())
        if meta.name not in tables:
            ours = tables & set(metadata.tables)
            if ours:
                raise DatabaseVersionError(
                    f"This database has MNIST Lab tables ({', '.join(sorted(ours))}) but no version record, so it was not "
                    "written by a version this one can upgrade. Point MNISTLAB_DATABASE_URL (or MNISTLAB_DATA_HOME) at a new "
                    "location; the old database is left as it is."
                )
            metadata.create_all(connection)
            _set_version(connection, SCHEMA_VERSION)
            return 0
        found = _version(connection)
        if found is None:
            raise DatabaseVersionError("This database has no schema version record; MNIST Lab will not guess what it holds.")
        if found > SCHEMA_VERSION:
            raise DatabaseVersionError(
                f"This database was written by a newer MNIST Lab (schema version {found}; this version knows up to "
                f"{SCHEMA_VERSION}). Upgrade MNIST Lab, or point MNISTLAB_DATABASE_URL at another database."
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            if version not in MIGRATIONS:
                raise DatabaseVersionError(f"There is no upgrade from schema version {version - 1} to {version}.")
            MIGRATIONS[version](connection)
            _set_version(connection, version)
        return found


class Database:
    """An engine whose schema is ready; one per URL and process (see `open_database`)."""

    def __init__(self, url: str):
        self.url = url
        self.engine = _make_engine(url)
        try:
            self.version_found = prepare(self.engine)
        except sa.exc.OperationalError:
            # Two processes creating the schema at the same moment: the second one retries and finds it.
            self.version_found = prepare(self.engine)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def dispose(self) -> None:
        self.engine.dispose()


_databases: dict[str, Database] = {}
_databases_lock = threading.Lock()


def open_database(url: str) -> Database:
    """The process's Database for `url`, created (and its schema prepared) on first use."""
    with _databases_lock:
        if url not in _databases:
            _databases[url] = Database(url)
        return _databases[url]
