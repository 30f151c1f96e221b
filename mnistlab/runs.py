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
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from mnistlab.database import Database, runs
from mnistlab.events import BatchProgress, EpochRecord, TrainingResult
from mnistlab.i18n import N_
from mnistlab.settings import TrainingSettings

QUEUED = N_("queued")
RUNNING = N_("running")
FINISHED = N_("finished")
CANCELLED = N_("cancelled")  # stopped by its owner: keeps the model trained so far, if any
FAILED = N_("failed")
INTERRUPTED = N_("interrupted")  # cut off by a server restart
ACTIVE = (QUEUED, RUNNING)
DONE = (FINISHED, CANCELLED, FAILED, INTERRUPTED)


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

    @property
    def is_done(self) -> bool:
        return self.status in DONE

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
        return f"{self.settings.arch} on {self.settings.dataset}"


class RunStore:
    """Reads and writes runs in the database; model files live under `data_home`."""

    def __init__(self, database: Database, data_home: Path):
        self.database = database
        self.data_home = Path(data_home)

    @property
    def _engine(self):
        return self.database.engine

    def run_folder(self, run_id: int) -> Path:
        return self.data_home / "runs" / str(int(run_id))

    # Writing

    def create(self, owner: str, settings: TrainingSettings, server: str, shared_key: str | None = None) -> int:
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
                    created_at=now,
                    heartbeat_at=now,
                )
            )
            return int(inserted.inserted_primary_key[0])

    def _update(self, run_id: int, **values) -> None:
        with self._engine.begin() as connection:
            connection.execute(runs.update().where(runs.c.id == run_id).values(**values))

    def mark_running(self, run_id: int) -> None:
        now = time.time()
        self._update(run_id, status=RUNNING, phase=N_("starting"), started_at=now, heartbeat_at=now)

    def save_progress(
        self,
        run_id: int,
        phase: str,
        plan: dict | None,
        latest: BatchProgress | None,
        curve: list[BatchProgress],
        epochs: list[EpochRecord],
        worker: str | None = None,
    ) -> None:
        self._update(
            run_id,
            phase=phase,
            plan=plan,
            latest=encode_progress(latest) if latest else None,
            curve=[encode_progress(point) for point in curve],
            epochs=[encode_epoch(record) for record in epochs],
            heartbeat_at=time.time(),
            worker=worker,
        )

    def finish(
        self,
        run_id: int,
        status: str,
        *,
        result: TrainingResult | None = None,
        error: str | None = None,
        model_file: Path | None = None,
        worker: str | None = None,
    ) -> None:
        relative = str(Path(model_file).resolve().relative_to(self.data_home.resolve())) if model_file else None
        values = dict(status=status, phase=status, ended_at=time.time(), error=error, model_file=relative, worker=worker)
        if result is not None:
            values["result"] = encode_result(result)
            values["epochs"] = [encode_epoch(record) for record in result.history]
        self._update(run_id, **values)

    def heartbeat(self, run_ids: list[int]) -> None:
        if run_ids:
            with self._engine.begin() as connection:
                connection.execute(runs.update().where(runs.c.id.in_(run_ids)).values(heartbeat_at=time.time()))

    def interrupt_unfinished(self, server: str) -> list[int]:
        """Mark this server's queued and running runs as interrupted (called when the server starts)."""
        return self._interrupt(
            sa.and_(runs.c.server == server, runs.c.status.in_(ACTIVE)), "The server restarted while this run was waiting or training."
        )

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
        model_path = (self.data_home / row.model_file) if row.model_file else None
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
