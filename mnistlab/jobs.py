"""Training jobs for the web app: a first-come queue in front of a training backend.

`JobManager.submit(settings, owner)` records a run in the database and returns its
id at once. The run waits in a first-come queue until the backend has a free place
(`backend.capacity`: worker processes on this machine, or trainings a Ray cluster can
hold), then trains there; nothing is ever trained in the web server's process. The
backend reports events (phase, plan, batches, epochs, then success or failure) as
they happen; the manager keeps each active run's state in memory for pages that poll
it, and writes it to the database: the status at once, the curve every few seconds,
so a restart loses at most a few seconds of curve. The finished model and the
test-set predictions are written into the run's folder.

A run belongs to its owner (a browser). When no page has asked about an active run
for `abandon_after` seconds, it is cancelled so it stops holding the queue; runs
owned by the server (the shared quick models) are never abandoned. `shared_run`
gives everyone the same run for the same recipe, so a class pressing one button
together makes one training.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from mnistlab.events import BatchProgress, EpochRecord, TrainingResult
from mnistlab.runs import (
    ACTIVE,
    CANCELLED,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    RunSnapshot,
    RunStore,
)
from mnistlab.settings import TrainingSettings
from mnistlab.worker import (
    BatchDone,
    EpochDone,
    JobEvent,
    JobFailed,
    JobSpec,
    JobSucceeded,
    LabelledImages,
    PhaseChanged,
    PlanReady,
    WorkerStarted,
    on_curve,
)

SERVER_OWNER = "server"
MODEL_FILE = "model.keras"
PREDICTIONS_FILE = "test_predictions.npz"
# The live curve is written to the database at most this often (status changes are written at once).
PERSIST_EVERY = 3.0


class Backend(Protocol):
    """Where trainings run. `start` returns at once; `report` is called with the job's events as they happen
    (from any thread), ending with exactly one JobSucceeded or JobFailed."""

    name: str

    @property
    def capacity(self) -> int: ...

    def start(self, spec: JobSpec, report) -> None: ...

    def cancel(self, run_id: int) -> None: ...

    def describe(self) -> str: ...

    def places(self) -> list[tuple[str, int | None]]: ...

    def shutdown(self) -> None: ...


@dataclass(frozen=True)
class Place:
    """One training place of the backend: where it is, and the run it trains (None when free)."""

    where: str
    run_id: int | None
    owner: str | None


@dataclass(frozen=True)
class ServerLoad:
    """How many trainings this server runs at once, where, and how many wait."""

    backend: str
    capacity: int
    running: int
    waiting: int
    places: tuple[Place, ...]


@dataclass(eq=False)
class _Live:
    """An active run's state in memory (guarded by the manager's lock)."""

    spec: JobSpec
    owner: str
    shared_key: str | None
    created_at: float
    status: str = QUEUED
    phase: str = "waiting in the queue"
    plan: dict | None = None
    latest: BatchProgress | None = None
    curve: list[BatchProgress] = field(default_factory=list)
    epochs: list[EpochRecord] = field(default_factory=list)
    result: TrainingResult | None = None
    error: str | None = None
    model_path: Path | None = None
    worker: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    last_asked: float = field(default_factory=time.monotonic)
    cancel_note: str | None = None
    cancel_requested: bool = False
    dirty: bool = False
    persisted_at: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def run_id(self) -> int:
        return self.spec.run_id


class JobManager:
    """The queue, the active runs and their owners; see the module docstring."""

    def __init__(self, store: RunStore, backend: Backend, server_id: str, abandon_after: float = 60.0):
        self.store = store
        self.backend = backend
        self.server_id = server_id
        self.abandon_after = abandon_after
        self._lock = threading.Condition()
        self._live: dict[int, _Live] = {}
        self._waiting: list[int] = []
        self._running: set[int] = set()
        self._stopping = False
        interrupted = store.interrupt_unfinished(server_id)
        self.interrupted_at_start = interrupted
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="mnistlab-dispatcher", daemon=True)
        self._dispatcher.start()
        self._keeper = threading.Thread(target=self._keeper_loop, name="mnistlab-keeper", daemon=True)
        self._keeper.start()

    # What pages use

    def submit(
        self,
        settings: TrainingSettings,
        owner: str,
        *,
        shared_key: str | None = None,
        extra_train: LabelledImages | None = None,
        extra_tests: dict[str, LabelledImages] | None = None,
    ) -> int:
        """Queue a training for `owner`; returns its run id."""
        run_id = self.store.create(owner, settings, self.server_id, shared_key=shared_key)
        spec = JobSpec(run_id, settings, extra_train, dict(extra_tests or {}))
        with self._lock:
            self._live[run_id] = _Live(spec, owner, shared_key, time.time())
            self._waiting.append(run_id)
            self._lock.notify_all()
        return run_id

    def shared_run(self, shared_key: str, settings: TrainingSettings) -> int:
        """The run everyone shares for `shared_key`: a finished one, the one training now, or a new one."""
        with self._lock:
            for live in self._live.values():
                if live.shared_key == shared_key and live.status in ACTIVE:
                    return live.run_id
            existing = self.store.latest_shared(shared_key)
            if existing is not None and (existing.status == FINISHED or existing.run_id in self._live):
                return existing.run_id
            return self.submit(settings, SERVER_OWNER, shared_key=shared_key)

    def snapshot(self, run_id: int, owner: str | None = None) -> RunSnapshot | None:
        """The run as it is now. When `owner` is given, the run must be theirs (or shared), else None.
        Asking about an active run keeps it from being abandoned."""
        with self._lock:
            live = self._live.get(run_id)
            if live is not None:
                if owner is not None and live.owner not in (owner, SERVER_OWNER):
                    return None
                live.last_asked = time.monotonic()
                return self._snapshot_of(live)
        snapshot = self.store.get(run_id)
        if snapshot is None or (owner is not None and snapshot.owner not in (owner, SERVER_OWNER)):
            return None
        return snapshot

    def runs_of(self, owner: str, limit: int = 100) -> list[RunSnapshot]:
        """The owner's runs, newest first: active ones as they are now, the others from the database."""
        stored = self.store.for_owner(owner, limit)
        with self._lock:
            return [self._snapshot_of(self._live[s.run_id]) if s.run_id in self._live else s for s in stored]

    def touch(self, owner: str) -> list[RunSnapshot]:
        """A page of `owner` is open: none of their active runs is abandoned. Returns those runs."""
        now = time.monotonic()
        with self._lock:
            mine = [live for live in self._live.values() if live.owner == owner and live.status in ACTIVE]
            for live in mine:
                live.last_asked = now
            return [self._snapshot_of(live) for live in mine]

    def cancel(self, run_id: int, owner: str | None = None, note: str | None = None) -> bool:
        """Stop a run: a waiting one leaves the queue, a training one stops after its batch and keeps its model."""
        with self._lock:
            live = self._live.get(run_id)
            if live is None or live.status not in ACTIVE:
                return False
            if owner is not None and live.owner != owner:
                return False
            live.cancel_note = note
            live.cancel_requested = True
            waiting = live.status == QUEUED
            if waiting:
                self._waiting.remove(run_id)
        if waiting:
            self._end(live, CANCELLED, error=note)
        else:
            self.backend.cancel(run_id)
        return True

    def position(self, run_id: int) -> int | None:
        """1 for the next run to start, 2 for the one after it; None when not waiting."""
        with self._lock:
            return self._waiting.index(run_id) + 1 if run_id in self._waiting else None

    def wait(self, run_id: int, timeout: float | None = None) -> bool:
        """Wait until the run is done (tests and scripts)."""
        with self._lock:
            live = self._live.get(run_id)
        return True if live is None else live.done.wait(timeout)

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._running)

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def load(self) -> ServerLoad:
        """The queue and the training places, for the page that shows them."""
        places = self.backend.places()
        with self._lock:
            owners = {run_id: live.owner for run_id, live in self._live.items()}
            running, waiting = len(self._running), len(self._waiting)
        return ServerLoad(
            self.backend.describe(),
            self.backend.capacity,
            running,
            waiting,
            tuple(Place(where, run_id, owners.get(run_id)) for where, run_id in places),
        )

    def active_runs(self) -> list[RunSnapshot]:
        """Every run waiting or training on this server, in queue order after the running ones."""
        with self._lock:
            order = sorted(self._running) + list(self._waiting)
            return [self._snapshot_of(self._live[run_id]) for run_id in order if run_id in self._live]

    def shutdown(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self.backend.shutdown()

    # Inside

    def _snapshot_of(self, live: _Live) -> RunSnapshot:
        position = self._waiting.index(live.run_id) + 1 if live.run_id in self._waiting else None
        return RunSnapshot(
            run_id=live.run_id,
            owner=live.owner,
            status=live.status,
            phase=live.phase,
            settings=live.spec.settings,
            plan=live.plan,
            latest_batch=live.latest,
            curve=tuple(live.curve),
            epochs=tuple(live.epochs),
            result=live.result,
            error=live.error,
            model_path=live.model_path,
            created_at=live.created_at,
            started_at=live.started_at,
            ended_at=live.ended_at,
            shared_key=live.shared_key,
            queue_position=position,
            worker=live.worker,
        )

    def _dispatch_loop(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and not (self._waiting and len(self._running) < self.backend.capacity):
                    self._lock.wait(1.0)
                if self._stopping:
                    return
                run_id = self._waiting.pop(0)
                live = self._live[run_id]
                live.status, live.phase = RUNNING, "starting"
                live.started_at = time.time()
                self._running.add(run_id)
            self.store.mark_running(run_id)
            try:
                self.backend.start(live.spec, lambda event, run_id=run_id: self._on_event(run_id, event))
            except Exception as error:  # noqa: BLE001 (a backend that cannot start a job fails that job, not the server)
                self._on_event(run_id, JobFailed(f"The training could not start: {error}"))
                continue
            with self._lock:
                cancelled_meanwhile = live.cancel_requested
            if cancelled_meanwhile:
                # Stop was pressed between leaving the queue and reaching the worker.
                self.backend.cancel(run_id)

    def _on_event(self, run_id: int, event: JobEvent) -> None:
        with self._lock:
            live = self._live.get(run_id)
            if live is None or live.status not in ACTIVE:
                return
            if isinstance(event, BatchDone):
                live.latest = event.progress
                if on_curve(event.progress):
                    live.curve.append(event.progress)
                live.dirty = True
                return
            if isinstance(event, PhaseChanged):
                live.phase = event.phase
            elif isinstance(event, PlanReady):
                live.plan = event.plan
            elif isinstance(event, WorkerStarted):
                live.worker = event.where
            elif isinstance(event, EpochDone):
                live.epochs.append(event.record)
        if isinstance(event, JobSucceeded):
            self._succeed(live, event)
        elif isinstance(event, JobFailed):
            self._end(live, FAILED, error=event.reason)
        else:
            self._persist(live)

    def _succeed(self, live: _Live, event: JobSucceeded) -> None:
        folder = self.store.run_folder(live.run_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            model_path = folder / MODEL_FILE
            _write_atomically(model_path, event.model_bytes)
            arrays = {"probabilities": event.probabilities, "labels": event.labels}
            if event.test_images is not None:
                arrays["images"] = event.test_images
            _write_atomically(folder / PREDICTIONS_FILE, _npz_bytes(arrays))
        except OSError as error:
            self._end(live, FAILED, error=f"The trained model could not be saved in {folder}: {error.strerror or error}.")
            return
        with self._lock:
            live.result = event.result
            live.epochs = list(event.result.history)
        status = CANCELLED if event.result.stop_reason == "cancelled" else FINISHED
        self._end(live, status, model_path=model_path, error=live.cancel_note)

    def _end(self, live: _Live, status: str, *, error: str | None = None, model_path: Path | None = None) -> None:
        """The run is over: free its place, write it down, and wake whoever waits for it."""
        with self._lock:
            if live.status not in ACTIVE:
                return
            live.status, live.phase, live.error, live.model_path = status, status, error, model_path
            live.ended_at = time.time()
            self._running.discard(live.run_id)
            values = (live.phase, live.plan, live.latest, list(live.curve), list(live.epochs))
            self._lock.notify_all()
        self.store.save_progress(live.run_id, *values, worker=live.worker)
        self.store.finish(live.run_id, status, result=live.result, error=error, model_file=model_path, worker=live.worker)
        live.done.set()

    def _persist(self, live: _Live) -> None:
        with self._lock:
            if live.status not in ACTIVE:
                return
            values = (live.phase, live.plan, live.latest, list(live.curve), list(live.epochs))
            live.dirty = False
            live.persisted_at = time.monotonic()
        self.store.save_progress(live.run_id, *values, worker=live.worker)

    def _keeper_loop(self) -> None:
        """Every second: write dirty curves, cancel abandoned runs, keep heartbeats, sweep other servers' dead runs."""
        last_heartbeat = last_sweep = 0.0
        while True:
            with self._lock:
                if self._stopping:
                    return
                now = time.monotonic()
                dirty = [live for live in self._live.values() if live.dirty and now - live.persisted_at >= PERSIST_EVERY]
                abandoned = [
                    live.run_id
                    for live in self._live.values()
                    if live.status in ACTIVE and live.owner != SERVER_OWNER and now - live.last_asked > self.abandon_after
                ]
                active = [live.run_id for live in self._live.values() if live.status in ACTIVE]
                finished = [
                    run_id for run_id, live in self._live.items() if live.status not in ACTIVE and live.ended_at and time.time() - live.ended_at > 600
                ]
                for run_id in finished:
                    del self._live[run_id]
            for live in dirty:
                self._persist(live)
            for run_id in abandoned:
                self.cancel(
                    run_id, note=f"Cancelled because no page asked about it for {self.abandon_after:.0f} s (the tab was closed); the queue moved on."
                )
            if now - last_heartbeat > 10:
                self.store.heartbeat(active)
                last_heartbeat = now
            if now - last_sweep > 60:
                # Runs of another replica that stopped answering (a shared database): they are not coming back.
                self.store.interrupt_stale(older_than=max(120.0, 4 * self.abandon_after))
                last_sweep = now
            time.sleep(1.0)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".tmp-{path.name}")
    temporary.write_bytes(data)
    temporary.replace(path)
