"""The server's shared services, built once per process from its configuration.

`services()` gives the database, the run store, the class store, the model store and the job manager
(with its training backend: worker processes on this machine, or a Ray cluster when
MNISTLAB_RAY_ADDRESS is set). The web app, the tests and the benchmark all get them
here, so there is one job queue per server process. Nothing here imports Streamlit.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from mnistlab.classroom import ClassStore
from mnistlab.config import ServerConfig
from mnistlab.database import Database, open_database
from mnistlab.jobs import JobManager
from mnistlab.retention import Forgotten, delete_old_rows
from mnistlab.runs import RunStore
from mnistlab.store import ModelStore

_LOGGER = logging.getLogger(__name__)


@dataclass(eq=False)
class Services:
    config: ServerConfig
    database: Database
    runs: RunStore
    models: ModelStore
    jobs: JobManager
    classes: ClassStore

    def delete_class(self, class_id: int, key: str | None) -> Forgotten:
        """The teacher deletes a class with everything in it (`mnistlab.retention`): rows, then the runs' folders."""
        return _removed(self, self.classes.delete_class(class_id, key))

    def forget_old(self, now: float | None = None) -> Forgotten:
        """Remove classes and runs older than MNISTLAB_KEEP_DAYS (nothing when it is not set)."""
        if self.config.keep_days is None:
            return Forgotten()
        with self.database.engine.begin() as connection:
            forgotten = delete_old_rows(connection, self.config.keep_days, now)
        return _removed(self, forgotten)


def _removed(services: Services, forgotten: Forgotten) -> Forgotten:
    services.runs.remove_folders(forgotten.run_ids)
    services.jobs.forget(forgotten.run_ids)
    return forgotten


# How often a server with MNISTLAB_KEEP_DAYS looks for old classes and runs to remove.
FORGET_EVERY = 3600.0


def _keep_forgetting(found: Services, stopping: threading.Event) -> None:
    """Remove old data now and every hour, until the process ends (a failure is tried again next time)."""
    while not stopping.is_set():
        try:
            found.forget_old()
        except Exception:  # a database that does not answer now is tried again in an hour
            _LOGGER.warning("Removing data older than MNISTLAB_KEEP_DAYS failed; trying again in an hour.", exc_info=True)
        stopping.wait(FORGET_EVERY)


def make_backend(config: ServerConfig):
    """The training backend the configuration asks for."""
    if config.ray_address:
        from mnistlab.ray_backend import RayBackend

        return RayBackend(config.ray_address, cpus_per_training=config.ray_cpus_per_training)
    from mnistlab.process_backend import ProcessBackend

    return ProcessBackend(workers=config.max_trainings, nice=config.worker_nice)


@dataclass(eq=False)
class _Core:
    database: Database
    runs: RunStore
    jobs: JobManager
    forgetting: threading.Event | None = None  # set to stop removing old data (MNISTLAB_KEEP_DAYS)


def _core_key(config: ServerConfig) -> tuple:
    """What a job manager depends on (the model store folder does not: it is cheap to open anywhere)."""
    return (
        config.database_url,
        config.data_home,
        config.runs_dir,
        config.max_trainings,
        config.ray_address,
        config.ray_cpus_per_training,
        config.server_id,
        config.abandon_after,
        config.worker_nice,
        config.limits,
    )


def check_writable(runs: RunStore, config: ServerConfig) -> None:
    """Fail now, with what to do, when the data home or the database cannot be written (a read-only folder, a full disk),
    rather than in the middle of a student's training."""
    import tempfile

    import sqlalchemy as sa

    from mnistlab.database import DatabaseUnavailableError, describe_problem, meta

    try:
        config.runs_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=config.runs_dir, prefix=".tmp-check-"):
            pass
    except OSError as error:
        reason = "its disk is full" if error.errno == 28 else (error.strerror or str(error))
        raise DatabaseUnavailableError(
            f"MNIST Lab cannot write its data folder {config.data_home} ({reason}). What to do: free some space, or give the user "
            "running MNIST Lab permission to write there, or set MNISTLAB_DATA_HOME to a folder it can write."
        ) from error
    try:
        with runs.database.engine.begin() as connection:
            connection.execute(meta.update().where(meta.c.key == "schema_version").values(value=meta.c.value))
    except sa.exc.DBAPIError as error:
        raise DatabaseUnavailableError(describe_problem(error, runs.database.url)) from error


_cores: dict[tuple, _Core] = {}
_cleaned_stores: set = set()
_lock = threading.Lock()


def services(config: ServerConfig | None = None) -> Services:
    """This process's services for `config` (by default, the one the environment gives).

    The database and the job manager (with its worker processes) are made once per process
    for a configuration; the model store is opened at the configured folder each time, and
    its leftovers of interrupted saves are removed the first time.
    """
    config = config or ServerConfig.from_environment()
    with _lock:
        key = _core_key(config)
        if key not in _cores:
            database = open_database(config.database_url)
            runs = RunStore(database, config.data_home, config.runs_dir)
            check_writable(runs, config)
            jobs = JobManager(runs, make_backend(config), config.server_id, abandon_after=config.abandon_after, limits=config.limits)
            _cores[key] = _Core(database, runs, jobs)
        core = _cores[key]
        models = ModelStore(config.models_dir)
        if models.root not in _cleaned_stores:
            models.remove_stale_temporary_files()
            _cleaned_stores.add(models.root)
        found = Services(config, core.database, core.runs, models, core.jobs, ClassStore(core.database))
        if config.keep_days is not None and core.forgetting is None:
            core.forgetting = threading.Event()
            threading.Thread(target=_keep_forgetting, args=(found, core.forgetting), name="mnistlab-keep-days", daemon=True).start()
    return found


def runs_for_reading(config: ServerConfig | None = None) -> RunStore:
    """The runs of the configured database, for a command that only reads them: no job manager, no server registered,
    nothing created, upgraded or marked (a read-only command once marked another replica's runs interrupted)."""
    config = config or ServerConfig.from_environment()
    return RunStore(Database(config.database_url, read_only=True), config.data_home, config.runs_dir)


def shutdown_all() -> None:
    """Stop every worker this process started (tests, scripts)."""
    with _lock:
        for core in _cores.values():
            if core.forgetting is not None:
                core.forgetting.set()
            core.jobs.shutdown()
        _cores.clear()
