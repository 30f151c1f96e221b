"""Training runs as the database keeps them: created, started, progressing, ended.

Every run the web app trains is a row of the `runs` table: its owner (a browser, or
the server for runs everyone shares), settings, status and phase, the plan, the live
curve and epoch table, the result or the error, and the model file in the run's
folder. Runs therefore survive a restart of the server: finished runs stay, and a
run that a restart cut off is marked "interrupted" with its curve so far.
`RunSnapshot` is the one read-only view of a run that pages, jobs and tests use.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from mnistlab.database import Database, runs, servers
from mnistlab.events import BatchProgress, EpochRecord, StopPoint, TrainingResult
from mnistlab.i18n import N_, _
from mnistlab.settings import TrainingSettings

QUEUED = N_("queued")
RUNNING = N_("running")
FINISHED = N_("finished")
CANCELLED = N_("cancelled")  # stopped by its owner: keeps the model trained so far, if any
FAILED = N_("failed")
INTERRUPTED = N_("interrupted")  # cut off by a server restart
ACTIVE = (QUEUED, RUNNING)
DONE = (FINISHED, CANCELLED, FAILED, INTERRUPTED)


def run_title(settings: TrainingSettings, builder: str | None = None) -> str:
    """What a run trains, in the current language (the one way every page names it). A network built on the form is
    "your network" to its owner; `builder` names someone else's ("Ali's network")."""
    from mnistlab.datasets import dataset_title
    from mnistlab.models import PRESETS, network_text

    if settings.arch in PRESETS:
        network = _(PRESETS[settings.arch].title)
    else:
        layers = network_text(settings.model_config) if settings.model_config else ""
        if builder is None:
            network = _("your network {layers}").format(layers=layers) if layers else _("your network")
        else:
            network = _("{name}'s network {layers}").format(name=builder, layers=layers).strip()
    return _("{network} on {dataset}").format(network=network, dataset=_(dataset_title(settings.dataset)))


def run_name(run_id: int, settings: TrainingSettings, builder: str | None = None) -> str:
    """A run's name on every page: "Run 8: Classic dense network on MNIST digits" (`builder`: see `run_title`)."""
    return _("Run {run}: {title}").format(run=run_id, title=run_title(settings, builder))


def _number(value: float | None) -> float | None:
    """A float that JSON databases accept (NaN and infinities become None)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _float(value) -> float:
    return float("nan") if value is None else float(value)


def encode_progress(point: BatchProgress) -> list:
    return [
        point.epoch,
        point.batch,
        point.batches_per_epoch,
        point.max_epochs,
        _number(point.loss),
        _number(point.accuracy),
        round(point.seconds, 3),
    ]


def decode_progress(row: list) -> BatchProgress:
    epoch, batch, batches_per_epoch, max_epochs, loss, accuracy, seconds = row
    return BatchProgress(epoch, batch, batches_per_epoch, max_epochs, _float(loss), _float(accuracy), seconds)


def encode_epoch(record: EpochRecord) -> dict:
    return {key: (_number(value) if isinstance(value, float) else value) for key, value in record.__dict__.items()}


def decode_epoch(values: dict) -> EpochRecord:
    values = dict(values)
    for key in ("loss", "accuracy"):
        values[key] = _float(values.get(key))
    return EpochRecord(**values)


def encode_result(result: TrainingResult) -> dict:
    """A result as JSON-ready values, with NaN turned into None."""

    def clean(value):
        if isinstance(value, float):
            return _number(value)
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(item) for item in value]
        return value

    return clean(result.to_dict())


def decode_result(values: dict) -> TrainingResult:
    history = [decode_epoch(record).__dict__ for record in values.get("history") or ()]
    return TrainingResult.from_dict({**values, "history": history})


@dataclass(frozen=True, eq=False)
class RunSnapshot:
    """A consistent, read-only copy of one run: from a live job or from the database."""

    run_id: int
    owner: str
    status: str
    phase: str
    settings: TrainingSettings
    plan: dict | None
    latest_batch: BatchProgress | None
    curve: tuple[BatchProgress, ...]
    epochs: tuple[EpochRecord, ...]
    result: TrainingResult | None
    error: str | None
    model_path: Path | None
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    shared_key: str | None = None
    queue_position: int | None = None
    worker: str | None = None
    training_key: str | None = None
    shared_from: int | None = None  # the finished run whose result this one took at once (same settings and seed)
    watchers: int = 1  # runs (students) following the same training now
    wait_seconds: float | None = None  # an estimate of the wait in the queue
    gathering: bool = False  # next to start, a place is free: it waits a moment for classmates pressing Train now
    saving_delayed: bool = False  # the database was busy: this run's latest state is not saved yet (it will be)
    stopping: bool = False  # Stop was pressed; the training stops after its batch
    stopped_at: StopPoint | None = None  # where a Stop was honoured (before the model is scored)

    @property
    def is_done(self) -> bool:
        return self.status in DONE

    @property
    def on_own_set(self) -> bool:
        """Trained on a class's own set (`mnistlab.class_set_data`): its outputs are that set's categories, which only
        the Class page knows; the pages made for MNIST's and Fashion-MNIST's classes leave it out."""
        from mnistlab.datasets import OWN_IMAGES

        return self.settings.dataset == OWN_IMAGES

    @property
    def has_model(self) -> bool:
        return self.model_path is not None and self.result is not None

    @property
    def elapsed(self) -> float:
        """Seconds since the run started training (0 while it waits)."""
        if self.started_at is None:
            return 0.0
        return (self.ended_at or time.time()) - self.started_at

    @property
    def title(self) -> str:
        """What it trains, in the current language: "Classic dense network on MNIST digits"."""
        return run_title(self.settings)

    @property
    def name(self) -> str:
        """How pages name the run, in the current language: "Run 8: Classic dense network on MNIST digits"."""
        return run_name(self.run_id, self.settings)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """Reads and writes runs in the database; each run's files (model, test predictions) live in `runs_dir`/RUN.

    Replicas of the app that share a PostgreSQL share `runs_dir` too (MNISTLAB_RUNS_DIR, a shared folder), so a run
    trained on one opens on another. A record keeps its model file relative to `runs_dir` ("7/model.keras"); records
    of older versions kept it relative to the data home ("runs/7/model.keras") and are read as before."""

    def __init__(self, database: Database, data_home: Path, runs_dir: Path | None = None):
        self.database = database
        self.data_home = Path(data_home)
        self.runs_dir = Path(runs_dir) if runs_dir is not None else self.data_home / "runs"

    @property
    def _engine(self):
        return self.database.engine

    def _relative(self, model_file: Path | None) -> str | None:
        return str(Path(model_file).resolve().relative_to(self.runs_dir.resolve())) if model_file else None

    def _resolve(self, relative: str | None) -> Path | None:
        if not relative:
            return None
        if relative.startswith("runs/"):  # an older version's record, relative to the data home
            return self.runs_dir / relative.removeprefix("runs/")
        return self.runs_dir / relative

    def run_folder(self, run_id: int) -> Path:
        return self.runs_dir / str(int(run_id))

    def remove_folders(self, run_ids) -> None:
        """Remove deleted runs' folders (their model files). A model another run took is that run's own hard link or
        copy, so it stays."""
        for run_id in run_ids:
            shutil.rmtree(self.run_folder(run_id), ignore_errors=True)

    # Writing

    def create(
        self,
        owner: str,
        settings: TrainingSettings,
        server: str,
        shared_key: str | None = None,
        training_key: str | None = None,
    ) -> int:
        now = time.time()
        with self._engine.begin() as connection:
            inserted = connection.execute(
                runs.insert().values(
                    owner=owner,
                    server=server,
                    status=QUEUED,
                    phase=N_("waiting in the queue"),
                    dataset=settings.dataset,
                    arch=settings.arch,
                    settings=settings.to_dict(),
                    curve=[],
                    epochs=[],
                    shared_key=shared_key,
                    training_key=training_key,
                    created_at=now,
                    heartbeat_at=now,
                )
            )
            return int(inserted.inserted_primary_key[0])

    def save_state(self, snapshot: RunSnapshot) -> None:
        """Write the whole state of a run in one statement (what the job manager knows of it now)."""
        model_file = snapshot.model_path
        relative = self._relative(model_file)
        values = dict(
            status=snapshot.status,
            phase=snapshot.phase,
            plan=snapshot.plan,
            latest=encode_progress(snapshot.latest_batch) if snapshot.latest_batch else None,
            curve=[encode_progress(point) for point in snapshot.curve],
            epochs=[encode_epoch(record) for record in snapshot.epochs],
            result=encode_result(snapshot.result) if snapshot.result is not None else None,
            error=snapshot.error,
            model_file=relative,
            worker=snapshot.worker,
            started_at=snapshot.started_at,
            ended_at=snapshot.ended_at,
            shared_from=snapshot.shared_from,
            heartbeat_at=time.time(),
        )
        self._update(snapshot.run_id, **values)

    def _update(self, run_id: int, **values) -> None:
        with self._engine.begin() as connection:
            connection.execute(runs.update().where(runs.c.id == run_id).values(**values))

    def heartbeat(self, run_ids: list[int]) -> None:
        if run_ids:
            with self._engine.begin() as connection:
                connection.execute(runs.update().where(runs.c.id.in_(run_ids)).values(heartbeat_at=time.time()))

    def register_server(self, server_id: str, host: str, pid: int) -> None:
        """This server process joins the database's list of servers (its runs carry its id)."""
        now = time.time()
        with self._engine.begin() as connection:
            connection.execute(servers.delete().where(servers.c.id == server_id))
            connection.execute(
                servers.insert().values(id=server_id, host=host, pid=pid, data_home=str(self.data_home), started_at=now, heartbeat_at=now)
            )

    def forget_server(self, server_id: str, reason: str | None = None) -> list[int]:
        """A server stops: its waiting and training runs end as interrupted, and it leaves the list of servers."""
        interrupted = self._interrupt(
            sa.and_(runs.c.server == server_id, runs.c.status.in_(ACTIVE)), reason or "The server stopped while this run was waiting or training."
        )
        with self._engine.begin() as connection:
            connection.execute(servers.delete().where(servers.c.id == server_id))
        return interrupted

    def server_heartbeat(self, server_id: str, host: str, pid: int) -> None:
        """This server is alive. Its row comes back if another server took it for dead (its database was unreachable
        for a while) and removed it."""
        now = time.time()
        with self._engine.begin() as connection:
            if not connection.execute(servers.update().where(servers.c.id == server_id).values(heartbeat_at=now)).rowcount:
                connection.execute(
                    servers.insert().values(id=server_id, host=host, pid=pid, data_home=str(self.data_home), started_at=now, heartbeat_at=now)
                )

    def interrupt_dead_servers(self, me: str, host: str, stale_after: float, alive=None) -> list[int]:
        """Mark the queued and running runs of servers that are gone as interrupted (called when a server starts).

        Gone: a server process of this machine that no longer runs; a server of any machine whose heartbeat is
        older than `stale_after` seconds; a server no longer in the table (it stopped, or it was an older version
        without an id). A live replica's runs are never touched (two servers may share one data home and one database)."""
        now = time.time()
        alive = alive or _process_alive
        with self._engine.connect() as connection:
            rows = connection.execute(sa.select(servers)).all()
        dead = [row.id for row in rows if row.id != me and ((row.host == host and not alive(row.pid)) or now - row.heartbeat_at > stale_after)]
        living = [row.id for row in rows if row.id not in dead]
        reason = "The server restarted while this run was waiting or training."
        # A run's server is gone when it is dead, or no longer in the table (it stopped, or it is an older version's).
        condition = sa.and_(runs.c.status.in_(ACTIVE), runs.c.server.not_in([*living, me]))
        interrupted = self._interrupt(condition, reason)
        if dead:
            with self._engine.begin() as connection:
                connection.execute(servers.delete().where(servers.c.id.in_(dead)))
        return interrupted

    def interrupt_stale(self, older_than: float) -> list[int]:
        """Mark active runs of any server whose last heartbeat is older than `older_than` seconds as interrupted."""
        limit = time.time() - older_than
        return self._interrupt(
            sa.and_(runs.c.status.in_(ACTIVE), runs.c.heartbeat_at < limit), "The server that ran this training stopped answering."
        )

    def _interrupt(self, condition, reason: str) -> list[int]:
        with self._engine.begin() as connection:
            ids = [row[0] for row in connection.execute(sa.select(runs.c.id).where(condition))]
            if ids:
                connection.execute(
                    runs.update().where(runs.c.id.in_(ids)).values(status=INTERRUPTED, phase=INTERRUPTED, error=reason, ended_at=time.time())
                )
        return ids

    # Reading

    def _snapshot(self, row) -> RunSnapshot:
        model_path = self._resolve(row.model_file)
        return RunSnapshot(
            run_id=row.id,
            owner=row.owner,
            status=row.status,
            phase=row.phase or "",
            settings=TrainingSettings.from_dict(row.settings),
            plan=row.plan,
            latest_batch=decode_progress(row.latest) if row.latest else None,
            curve=tuple(decode_progress(point) for point in row.curve or ()),
            epochs=tuple(decode_epoch(record) for record in row.epochs or ()),
            result=decode_result(row.result) if row.result else None,
            error=row.error,
            model_path=model_path,
            created_at=row.created_at,
            started_at=row.started_at,
            ended_at=row.ended_at,
            shared_key=row.shared_key,
            worker=row.worker,
            training_key=row.training_key,
            shared_from=row.shared_from,
        )

    def get(self, run_id: int) -> RunSnapshot | None:
        with self._engine.connect() as connection:
            row = connection.execute(sa.select(runs).where(runs.c.id == int(run_id))).first()
        return self._snapshot(row) if row else None

    def for_owner(self, owner: str, limit: int = 100) -> list[RunSnapshot]:
        """The owner's runs, newest first."""
        with self._engine.connect() as connection:
            rows = connection.execute(sa.select(runs).where(runs.c.owner == owner).order_by(runs.c.id.desc()).limit(limit)).all()
        return [self._snapshot(row) for row in rows]

    def for_owners_since(self, owners, since: float, limit: int = 500) -> list[RunSnapshot]:
        """The runs these owners pressed at `since` or later, newest first (a class's race)."""
        owners = list(owners)
        if not owners:
            return []
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(runs).where(runs.c.owner.in_(owners), runs.c.created_at >= since).order_by(runs.c.id.desc()).limit(limit)
            ).all()
        return [self._snapshot(row) for row in rows]

    def latest_shared(self, shared_key: str) -> RunSnapshot | None:
        """The newest finished run with a model for `shared_key`, else the newest active one."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(runs).where(runs.c.shared_key == shared_key, runs.c.status.in_((FINISHED, *ACTIVE))).order_by(runs.c.id.desc())
            ).all()
        snapshots = [self._snapshot(row) for row in rows]
        usable = [snapshot for snapshot in snapshots if snapshot.status == FINISHED and snapshot.model_path and snapshot.model_path.is_file()]
        if usable:
            return usable[0]
        active = [snapshot for snapshot in snapshots if snapshot.status in ACTIVE]
        return active[0] if active else None

    def finished_with_key(self, training_key: str) -> RunSnapshot | None:
        """The newest run that finished training with this training key and still has its files (a result to share)."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(runs).where(runs.c.training_key == training_key, runs.c.status == FINISHED).order_by(runs.c.id.desc()).limit(20)
            ).all()
        for row in rows:
            snapshot = self._snapshot(row)
            if snapshot.has_model and snapshot.model_path.is_file() and snapshot.result.stop_reason != "cancelled":
                return snapshot
        return None

    def training_seconds_by_owner(self, since: float) -> dict[str, float]:
        """Seconds each owner's runs have trained since `since` (the fair queue serves who trained least first)."""
        query = (
            sa.select(runs.c.owner, sa.func.sum(runs.c.ended_at - runs.c.started_at))
            .where(runs.c.started_at >= since, runs.c.ended_at.is_not(None), runs.c.shared_from.is_(None))
            .group_by(runs.c.owner)
        )
        with self._engine.connect() as connection:
            return {row[0]: float(row[1] or 0.0) for row in connection.execute(query).all()}

    def recorded_runs(self, limit: int = 200) -> list[RunSnapshot]:
        """The newest runs that trained to their end on this database (how long this server takes)."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(runs)
                .where(runs.c.status == FINISHED, runs.c.shared_from.is_(None), runs.c.started_at.is_not(None))
                .order_by(runs.c.id.desc())
                .limit(limit)
            ).all()
        return [self._snapshot(row) for row in rows]

    def active_of_owners(self, owners: list[str]) -> list[RunSnapshot]:
        """The runs of these owners that are waiting or training (any server)."""
        if not owners:
            return []
        with self._engine.connect() as connection:
            rows = connection.execute(sa.select(runs).where(runs.c.owner.in_(owners), runs.c.status.in_(ACTIVE)).order_by(runs.c.id)).all()
        return [self._snapshot(row) for row in rows]
