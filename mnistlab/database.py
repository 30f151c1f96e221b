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

SCHEMA_VERSION = 6
# How long a write waits for another writer before it fails (and is retried later, or the page says so).
BUSY_SECONDS = 5.0

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
    # Version 3. Runs with the same training key train the same network (same settings, seed and data): a class
    # pressing Train with the same settings shares one training; a run can take a finished one's result (shared_from).
    sa.Column("training_key", sa.String(80), index=True),
    sa.Column("shared_from", sa.Integer),
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
    # Version 3: a lesson's budget for the class's trainings (None: the server's limits).
    sa.Column("max_epochs", sa.Integer),
    sa.Column("train_images", sa.Integer),
    # Version 5: where the teacher sent the class (a page, its link's query, the lesson step) and when, and whether
    # every student's screen is paused ("eyes on the projector").
    sa.Column("sent_page", sa.String(40)),
    sa.Column("sent_query", sa.JSON),
    sa.Column("sent_step", sa.String(10)),
    sa.Column("sent_at", sa.Float),
    sa.Column("paused", sa.Boolean),
    # Version 6: what the class draws: None for the digits, else its own set of categories, as
    # {"set": its number in the class, "categories": `mnistlab.category_sets.CategorySet.to_json()`}.
    sa.Column("categories", sa.JSON),
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
    # Version 3: the nickname's comparison key (mnistlab.nicknames), unique in the class, and when the student left.
    sa.Column("nickname_key", sa.String(80)),
    sa.Column("left_at", sa.Float),
    # Version 4: the nickname's look-alike skeleton (mnistlab.nicknames), also unique in the class ("AIi" is "Ali").
    sa.Column("nickname_skeleton", sa.String(80)),
    sa.UniqueConstraint("class_id", "nickname"),
    sa.Index("students_class_nickname_key", "class_id", "nickname_key", unique=True),
    sa.Index("students_class_nickname_skeleton", "class_id", "nickname_skeleton", unique=True),
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
    # Version 6: the number of the class's own set it was drawn for (its label is a category's number), None for a digit.
    sa.Column("category_set", sa.Integer),
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


# Version 5: the class's races (`mnistlab.race`): the newest one of a class is the one on its projector.
races = sa.Table(
    "races",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("class_id", sa.Integer, sa.ForeignKey("classes.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("target", sa.Float, nullable=False),
    sa.Column("reference", sa.JSON),  # the lesson step's settings (TrainingSettings.to_dict), or None
    sa.Column("started_at", sa.Float, nullable=False),
    sqlite_autoincrement=True,
)


# Version 3: the app servers sharing this database, each process with its own id and heartbeat, so a server marks
# only its own dead runs as interrupted (two replicas on one data home used to interrupt each other's live runs).
servers = sa.Table(
    "servers",
    metadata,
    sa.Column("id", sa.String(120), primary_key=True),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("data_home", sa.String(500), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
)


def _add_classes(connection: Connection) -> None:
    """Version 1 to 2: the classroom tables (the runs table is unchanged)."""
    metadata.create_all(connection, tables=[classes, students, drawings, class_runs])


def _add_shared_trainings(connection: Connection) -> None:
    """Version 2 to 3: training keys, class budgets, nickname keys, left students, and the servers table."""
    from mnistlab.nicknames import nickname_key

    inspector = sa.inspect(connection)
    # Version 2's tables when the upgrade started at version 1 were made by today's definitions (with these columns).
    existing = {table.name: {column["name"] for column in inspector.get_columns(table.name)} for table in (runs, classes, students)}
    for table, column in (
        (runs, runs.c.training_key),
        (runs, runs.c.shared_from),
        (classes, classes.c.max_epochs),
        (classes, classes.c.train_images),
        (students, students.c.nickname_key),
        (students, students.c.left_at),
    ):
        if column.name in existing[table.name]:
            continue
        kind = column.type.compile(dialect=connection.dialect)
        connection.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")
    seen: set[tuple[int, str]] = set()
    for row in connection.execute(sa.select(students.c.id, students.c.class_id, students.c.nickname).order_by(students.c.id)).all():
        key = nickname_key(row.nickname)
        if (row.class_id, key) in seen:
            key = f"{key}#{row.id}"  # two names an older version let through as different: both stay, as they were
        seen.add((row.class_id, key))
        connection.execute(students.update().where(students.c.id == row.id).values(nickname_key=key))
    indexes = {index["name"] for name in ("runs", "students") for index in inspector.get_indexes(name)}
    for index in (*runs.indexes, *students.indexes):
        if index.name in ("ix_runs_training_key", "students_class_nickname_key") and index.name not in indexes:
            index.create(connection)
    metadata.create_all(connection, tables=[servers])


def _add_nickname_skeletons(connection: Connection) -> None:
    """Version 3 to 4: nicknames compared by Unicode's confusable skeletons (UTS #39): the key made anew, and a second one."""
    from mnistlab.nicknames import nickname_key, skeleton_key

    inspector = sa.inspect(connection)
    if "nickname_skeleton" not in {column["name"] for column in inspector.get_columns("students")}:
        kind = students.c.nickname_skeleton.type.compile(dialect=connection.dialect)
        connection.exec_driver_sql(f"ALTER TABLE students ADD COLUMN nickname_skeleton {kind}")
    indexes = {index["name"] for index in inspector.get_indexes("students")}
    for name in ("students_class_nickname_key", "students_class_nickname_skeleton"):
        if name in indexes:
            connection.exec_driver_sql(f"DROP INDEX {name}")
    seen: set[tuple[int, str]] = set()
    for row in connection.execute(sa.select(students.c.id, students.c.class_id, students.c.nickname).order_by(students.c.id)).all():
        keys = {}
        for column, key in (("nickname_key", nickname_key(row.nickname)), ("nickname_skeleton", skeleton_key(row.nickname))):
            if (row.class_id, column, key) in seen:
                key = f"{key}#{row.id}"  # two names an older version let through as different: both stay, as they were
            seen.add((row.class_id, column, key))
            keys[column] = key
        connection.execute(students.update().where(students.c.id == row.id).values(**keys))
    for index in students.indexes:
        if index.name in ("students_class_nickname_key", "students_class_nickname_skeleton"):
            index.create(connection)


def _add_races(connection: Connection) -> None:
    """Version 4 to 5: the class's races, and where the teacher sent the class."""
    existing = {column["name"] for column in sa.inspect(connection).get_columns("classes")}
    for column in (classes.c.sent_page, classes.c.sent_query, classes.c.sent_step, classes.c.sent_at, classes.c.paused):
        if column.name not in existing:
            kind = column.type.compile(dialect=connection.dialect)
            connection.exec_driver_sql(f"ALTER TABLE classes ADD COLUMN {column.name} {kind}")
    metadata.create_all(connection, tables=[races])


def _add_category_sets(connection: Connection) -> None:
    """Version 5 to 6: a class's own set of categories, and which drawings were drawn for it."""
    inspector = sa.inspect(connection)
    for table, column in ((classes, classes.c.categories), (drawings, drawings.c.category_set)):
        if column.name not in {existing["name"] for existing in inspector.get_columns(table.name)}:
            kind = column.type.compile(dialect=connection.dialect)
            connection.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")


# MIGRATIONS[n] upgrades a database from version n - 1 to version n.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _add_classes,
    3: _add_shared_trainings,
    4: _add_nickname_skeletons,
    5: _add_races,
    6: _add_category_sets,
}


class DatabaseVersionError(RuntimeError):
    """The database was written by another version of MNIST Lab and cannot be used as it is."""


class DatabaseUnavailableError(RuntimeError):
    """The database cannot be opened or written: damaged, read-only, a full disk, a server that does not answer."""


def is_busy(error: BaseException) -> bool:
    """A write that failed only because another one held the database for longer than it waited: try again later."""
    text = str(error).lower()
    return isinstance(error, sa.exc.OperationalError) and ("locked" in text or "busy" in text)


def describe_problem(error: BaseException, url: str) -> str:
    """What is wrong with the database and what the teacher can do, in one message (never a traceback)."""
    text = str(getattr(error, "orig", None) or error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    lowered = text.lower()
    where = sa.engine.make_url(url).database if url.startswith("sqlite") else sa.engine.make_url(url).render_as_string(hide_password=True)
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return (
            f"The runs database ({where}) is damaged ({text}). What to do: stop MNIST Lab, move that file away (keep it: "
            "it may be repaired with sqlite3's .recover), and start MNIST Lab again; it makes a new, empty database."
        )
    if isinstance(error, OSError) or any(
        words in lowered for words in ("readonly", "read-only", "permission denied", "unable to open", "not a directory")
    ):
        return (
            f"MNIST Lab cannot write its runs database ({where}): {text}. What to do: give the user running MNIST Lab "
            "permission to write that folder, or set MNISTLAB_DATA_HOME to a folder it can write."
        )
    if "disk is full" in lowered or "no space left" in lowered:
        return f"The disk holding the runs database ({where}) is full ({text}). What to do: free some space on it; nothing else is needed."
    if is_busy(error):
        return f"The runs database ({where}) is busy: another program has held it for a while ({text}). Saving waits and tries again."
    return f"The runs database ({where}) cannot be used: {text}. What to do: check MNISTLAB_DATABASE_URL and that the database server runs."


def _make_engine(url: str, read_only: bool = False) -> Engine:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if database and database != ":memory:" and not read_only:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_SECONDS})

    @sa.event.listens_for(engine, "connect")
    def _sqlite_settings(connection, _record):
        cursor = connection.cursor()
        # WAL: readers never wait for the writer; NORMAL sync is safe with WAL. (A reader leaves the file's mode alone.)
        if not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")
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
        if connection.dialect.name == "postgresql":
            # Replicas starting at once on a new database: one creates or upgrades the schema, the others wait for it.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(726278101)"))
        elif connection.dialect.name == "sqlite":
            # The same for processes on one SQLite file (the server's warm-up, a command, a test): the write lock from
            # the start, so nobody sees the schema half made. Python's sqlite3 would otherwise run each CREATE TABLE on
            # its own, and another process saw the tables without their version record.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
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


def check_version(engine: Engine) -> int:
    """The schema version of a database this version can read as it is, without writing anything (or refuse)."""
    with engine.connect() as connection:
        if meta.name not in set(sa.inspect(connection).get_table_names()):
            raise DatabaseUnavailableError("There is no runs database there yet: nothing has been trained with these settings.")
        found = _version(connection)
    if found != SCHEMA_VERSION:
        raise DatabaseVersionError(
            f"This database has schema version {found}, this MNIST Lab reads version {SCHEMA_VERSION}: start the app once "
            "(it upgrades an older database), or use the MNIST Lab that wrote it."
        )
    return found


class Database:
    """An engine whose schema is ready; one per URL and process (see `open_database`).

    With `read_only`, nothing is created or upgraded (the schema must be this version's) and nothing is written: for
    commands that only read runs (`python -m mnistlab code --run`)."""

    def __init__(self, url: str, read_only: bool = False):
        self.url = url
        try:
            if read_only and url.startswith("sqlite") and not Path(sa.engine.make_url(url).database or "").is_file():
                raise DatabaseUnavailableError("There is no runs database there yet: nothing has been trained with these settings.")
            self.engine = _make_engine(url, read_only)
            if read_only:
                self.version_found = check_version(self.engine)
                return
            try:
                self.version_found = prepare(self.engine)
            except sa.exc.OperationalError as error:
                if not is_busy(error) and "already exists" not in str(error):
                    raise
                # Two processes creating the schema at the same moment: the second one retries and finds it.
                self.version_found = prepare(self.engine)
        except (sa.exc.DBAPIError, sa.exc.ArgumentError, OSError) as error:
            raise DatabaseUnavailableError(describe_problem(error, url)) from error

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
