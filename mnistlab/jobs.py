"""Training jobs for the web app: a class's trainings on a server, shared, packed and fairly queued.

`JobManager.submit(settings, owner)` records a run in the database and returns its id
at once. A run is one student's record (results, save, share, compare); what trains
is a *network*, and a run follows one:

- **Same settings, one training.** Trainings are seeded and deterministic, so runs
  whose settings and data are the same (`training_key`) follow the same network: when
  25 students press Train on a lesson's step, one network trains and 25 runs show it
  live and get its result and model. A run identical to one that already finished
  takes its result at once (`shared_from`); another seed trains a network of its own.
- **Packs.** Waiting dense networks that read the same batches (same dataset, seed,
  batch size and image counts) train together in one job (`mnistlab.packing`), each
  with its own progress, target, Stop and result. A dense network alone trains with
  the same engine (a pack of one), so its result is the same, bit for bit, whoever
  trained with it.
- **A fair queue.** A student has one active run at a time. A free place goes to the
  waiting network of the student who has trained least so far today (then who waited
  longest); a run knows its place and an estimate of its wait from this server's own
  recorded times.
- **Limits.** Networks over the server's size or epoch-time limits are refused before
  anything is queued (`mnistlab.sizing`).

A job runs on the backend (`backend.capacity` places: worker processes on this machine,
or a Ray cluster); nothing trains in the web server. The backend reports each job's
events as they happen; the manager keeps every active run's state in memory for the
pages and writes it to the database: the status at once, the curve every few seconds.
A database that is busy or locked never stops a thread: the state stays in memory,
the run says its saving is delayed, and the keeper writes it when the database is
back. Stop honours one student: a network nobody else follows stops after its batch
and keeps its model; one that classmates still watch hands that student a copy of the
model as it is (a snapshot) and goes on.

A run belongs to its owner (a browser). When no page has asked about an active run
for `abandon_after` seconds, it is cancelled so it stops holding the queue; runs owned
by the server (the shared quick models) are never abandoned. Each server process has
its own id in the database's `servers` table and marks as interrupted only the runs of
servers that are gone, never a live replica's.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import secrets
import socket
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import sqlalchemy as sa

from mnistlab.events import BatchProgress, EpochRecord, StopPoint, TrainingResult
from mnistlab.i18n import _, ngettext
from mnistlab.packing import MAX_PACK, can_pack, pack_key
from mnistlab.precision import FLOAT32, precision_for
from mnistlab.runs import ACTIVE, CANCELLED, FAILED, FINISHED, QUEUED, RUNNING, RunSnapshot, RunStore
from mnistlab.settings import TrainingSettings
from mnistlab.sizing import Limits, Speed, check_size, epoch_seconds
from mnistlab.worker import (
    SNAPSHOT,
    STOP,
    BatchDone,
    EpochDone,
    JobEnded,
    JobEvent,
    JobFailed,
    JobSpec,
    LabelledImages,
    NetworkDone,
    NetworkFailed,
    PhaseChanged,
    PlanReady,
    Stopped,
    WorkerStarted,
    on_curve,
)

SERVER_OWNER = "server"
MODEL_FILE = "model.keras"
PREDICTIONS_FILE = "test_predictions.npz"
# The live curve is written to the database at most this often (status changes are written at once).
PERSIST_EVERY = 3.0
# A dense network waits this long for classmates pressing Train in the same moment, to train in one pack with them.
GATHER_SECONDS = 1.5
# The fair queue counts the training seconds of the last this many hours.
FAIRNESS_HOURS = 12


class Backend(Protocol):
    """Where trainings run. `start` returns at once; `report` is called with the job's events as they happen
    (from any thread), ending with exactly one JobEnded or JobFailed."""

    name: str

    @property
    def capacity(self) -> int: ...

    def start(self, spec: JobSpec, report) -> None: ...

    def control(self, job_id: int, network: int, action: str) -> None: ...

    def describe(self) -> str: ...

    def places(self) -> list[tuple[str, int | None]]: ...

    def shutdown(self) -> None: ...


class OneRunAtATimeError(ValueError):
    """The student already has a run waiting or training."""


class DatabaseBusyError(ValueError):
    """The database did not answer in time: nothing was started, the student may press again."""


@dataclass(frozen=True)
class Place:
    """One training place of the backend: where it is, and the run it trains (None when free)."""

    where: str
    run_id: int | None
    owner: str | None
    networks: int = 0  # networks trained there together (a pack)
    watchers: int = 0  # runs following them


@dataclass(frozen=True)
class ServerLoad:
    """How many trainings this server runs at once, where, and how many wait."""

    backend: str
    capacity: int
    running: int
    waiting: int
    places: tuple[Place, ...]


def training_key(settings: TrainingSettings, precision: str, extra_train=None, extra_tests=None) -> str:
    """The same for two runs exactly when they would train the same network: settings, seed, data and precision."""
    digest = hashlib.sha256(json.dumps({"settings": settings.to_dict(), "precision": precision}, sort_keys=True, default=str).encode())
    if extra_train is not None:
        for array in extra_train:
            digest.update(np.ascontiguousarray(array).tobytes())
    for name in sorted(extra_tests or {}):
        digest.update(name.encode())
        for array in extra_tests[name]:
            digest.update(np.ascontiguousarray(array).tobytes())
    return "t:" + digest.hexdigest()[:40]


@dataclass(eq=False)
class _Network:
    """One network to train, and the runs that follow it."""

    key: str
    settings: TrainingSettings
    extra_train: LabelledImages | None
    extra_tests: dict[str, LabelledImages]
    precision: str
    queued_at: float
    followers: list[int] = field(default_factory=list)
    job: _Job | None = None
    index: int = 0
    phase: str = "waiting in the queue"
    plan: dict | None = None
    latest: BatchProgress | None = None
    curve: list[BatchProgress] = field(default_factory=list)
    epochs: list[EpochRecord] = field(default_factory=list)
    worker: str | None = None
    started_at: float | None = None
    stopped_at: StopPoint | None = None
    snapshot_for: list[int] = field(default_factory=list)
    done: bool = False

    @property
    def packable(self) -> bool:
        return can_pack(self.settings) and self.precision == FLOAT32 and self.extra_train is None and not self.extra_tests


@dataclass(eq=False)
class _Job:
    job_id: int
    networks: list[_Network]
    started_at: float


@dataclass(eq=False)
class _Live:
    """An active (or just ended) run's state in memory (guarded by the manager's lock)."""

    run_id: int
    settings: TrainingSettings
    owner: str
    shared_key: str | None
    training_key: str
    created_at: float
    network: _Network | None = None
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
    shared_from: int | None = None
    last_asked: float = field(default_factory=time.monotonic)
    cancel_note: str | None = None
    stopping: bool = False
    stopped_at: StopPoint | None = None
    dirty: bool = False
    unsaved: bool = False
    persisted_at: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)


class JobManager:
    """The queue, the networks training, the runs following them and their owners; see the module docstring."""

    def __init__(
        self,
        store: RunStore,
        backend: Backend,
        server_id: str,
        abandon_after: float = 60.0,
        limits: Limits | None = None,
        environ=None,
    ):
        self.store = store
        self.backend = backend
        self.host = socket.gethostname()
        # This process's own id: two servers on one data home (replicas) never share one.
        self.server_id = f"{server_id}#{os.getpid()}-{secrets.token_hex(3)}"
        self.abandon_after = abandon_after
        self.limits = limits or Limits()
        self.environ = environ
        self._lock = threading.Condition()
        self._live: dict[int, _Live] = {}
        self._waiting: list[_Network] = []
        self._networks: dict[str, _Network] = {}  # training key -> network waiting or training
        self._jobs: dict[int, _Job] = {}
        self._job_ids = itertools.count(1)
        self._trained: dict[str, float] | None = None
        self._speed: Speed = Speed()
        self._recorded: list[RunSnapshot] = []
        self._estimates: dict[str, float] = {}
        self._stopping = False
        self.database_problem: str | None = None
        store.register_server(self.server_id, self.host, os.getpid())
        self.interrupted_at_start = store.interrupt_dead_servers(self.server_id, self.host, stale_after=self._stale_after)
        self._refresh_recorded()
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="mnistlab-dispatcher", daemon=True)
        self._dispatcher.start()
        self._keeper = threading.Thread(target=self._keeper_loop, name="mnistlab-keeper", daemon=True)
        self._keeper.start()

    @property
    def _stale_after(self) -> float:
        return max(120.0, 4 * self.abandon_after)

    # What pages use

    def precision(self, settings: TrainingSettings) -> str:
        return precision_for(settings.arch, settings.config.is_convolutional, self.environ)

    def check(self, settings: TrainingSettings, train_images: int | None = None) -> None:
        """Refuse a network over this server's limits (a ValueError that says what to make smaller)."""
        from mnistlab.datasets import DATASETS

        images = train_images or settings.train_size or int(DATASETS[settings.dataset].published_train_size * (1 - settings.validation_split))
        check_size(settings.config, images, settings.batch_size or settings.base_recipe.batch_size, self.limits, self.speed())

    def submit(
        self,
        settings: TrainingSettings,
        owner: str,
        *,
        shared_key: str | None = None,
        extra_train: LabelledImages | None = None,
        extra_tests: dict[str, LabelledImages] | None = None,
    ) -> int:
        """Queue a training for `owner` (or join the same one); returns its run id.

        Raises OneRunAtATimeError when the owner already has a run waiting or training, a ValueError when the
        network is over the server's limits, and DatabaseBusyError when the database did not answer."""
        extra_tests = dict(extra_tests or {})
        if owner != SERVER_OWNER:
            with self._lock:
                mine = [live for live in self._live.values() if live.owner == owner and live.status in ACTIVE]
            if mine:
                raise OneRunAtATimeError(
                    _("You already have a training waiting or running (run {run}). Stop it, or wait until it ends, to start another.").format(
                        run=mine[0].run_id
                    )
                )
            self.check(settings)
        precision = self.precision(settings)
        key = training_key(settings, precision, extra_train, extra_tests)
        try:
            run_id = self.store.create(owner, settings, self.server_id, shared_key=shared_key, training_key=key)
        except sa.exc.DBAPIError as error:
            self._note_database_problem(error)
            raise DatabaseBusyError(_("The runs database is busy, so your training was not started. Press Train again in a moment.")) from error
        live = _Live(run_id, settings, owner, shared_key, key, time.time())
        finished = self._finished_with_key(key) if key not in self._networks else None
        with self._lock:
            self._live[run_id] = live
            network = self._networks.get(key)
            if network is not None and network.job is not None and all(self._live[run].stopping for run in network.followers):
                network = None  # it is stopping for everyone who watched it: a new training starts
            if network is None and finished is not None:
                self._take_result(live, finished)
            else:
                if network is None:
                    network = _Network(key, settings, extra_train, extra_tests, precision, time.monotonic())
                    self._networks[key] = network
                    self._waiting.append(network)
                self._follow(live, network)
                self._lock.notify_all()
        if live.status not in ACTIVE:
            self._persist(live)
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
            known = {snapshot.run_id for snapshot in stored}
            unsaved = [self._snapshot_of(live) for live in self._live.values() if live.owner == owner and live.run_id not in known]
            return sorted(
                [self._snapshot_of(self._live[s.run_id]) if s.run_id in self._live else s for s in stored] + unsaved,
                key=lambda snapshot: -snapshot.run_id,
            )

    def touch(self, owner: str) -> list[RunSnapshot]:
        """A page of `owner` is open: none of their active runs is abandoned. Returns those runs."""
        now = time.monotonic()
        with self._lock:
            mine = [live for live in self._live.values() if live.owner == owner and live.status in ACTIVE]
            for live in mine:
                live.last_asked = now
            return [self._snapshot_of(live) for live in mine]

    def cancel(self, run_id: int, owner: str | None = None, note: str | None = None) -> bool:
        """Stop a run for its owner: a waiting one leaves the queue; a training one stops after its batch with its
        model (its network stops, or, when classmates still follow it, hands this run a snapshot and goes on)."""
        control = None
        with self._lock:
            live = self._live.get(run_id)
            if live is None or live.status not in ACTIVE or live.stopping:
                return False
            if owner is not None and live.owner != owner:
                return False
            live.cancel_note = note
            network = live.network
            if network is None or network.job is None:
                if network is not None:
                    self._unfollow(live, network)
                ended = True
            else:
                ended = False
                live.stopping = True
                live.phase = "stopping"
                others = [other for other in network.followers if other != run_id and not self._live[other].stopping]
                if others:
                    network.snapshot_for.append(run_id)
                    control = (network.job.job_id, network.index, SNAPSHOT)
                else:
                    control = (network.job.job_id, network.index, STOP)
            self._lock.notify_all()
        if ended:
            self._end(live, CANCELLED, error=note)
        elif control is not None:
            self.backend.control(*control)
        return True

    def position(self, run_id: int) -> int | None:
        """1 for the next job to start (networks that train in one pack share its place), 2 for the one after; None when not waiting."""
        with self._lock:
            live = self._live.get(run_id)
            place = self._place_of(live) if live is not None else None
            return place[0] if place is not None else None

    def wait(self, run_id: int, timeout: float | None = None) -> bool:
        """Wait until the run is done (tests and scripts)."""
        with self._lock:
            live = self._live.get(run_id)
        return True if live is None else live.done.wait(timeout)

    @property
    def running(self) -> int:
        with self._lock:
            return sum(len(job.networks) for job in self._jobs.values())

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def load(self) -> ServerLoad:
        """The queue and the training places, for the page that shows them."""
        places = self.backend.places()
        with self._lock:
            shown = []
            for where, job_id in places:
                job = self._jobs.get(job_id) if job_id is not None else None
                if job is None:
                    shown.append(Place(where, None, None))
                    continue
                followers = [run for network in job.networks for run in network.followers]
                first = self._live.get(followers[0]) if followers else None
                shown.append(Place(where, first.run_id if first else None, first.owner if first else None, len(job.networks), len(followers)))
            running, waiting = sum(len(job.networks) for job in self._jobs.values()), len(self._waiting)
        return ServerLoad(self.backend.describe(), self.backend.capacity, running, waiting, tuple(shown))

    def active_runs(self) -> list[RunSnapshot]:
        """Every run waiting or training on this server: the training ones, then the waiting ones in queue order."""
        with self._lock:
            training = [live for live in self._live.values() if live.status == RUNNING]
            waiting = [live for network in self._fair_order() for live in (self._live[run] for run in network.followers)]
            return [self._snapshot_of(live) for live in sorted(training, key=lambda live: live.run_id) + waiting]

    def speed(self) -> Speed:
        """This server's training speed against the estimate, from its own recorded epochs (refreshed by the keeper)."""
        return self._speed

    def _refresh_recorded(self) -> None:
        """Read this server's recorded runs again (outside the lock): its speed and how long each kind of run takes."""
        try:
            recorded = self.store.recorded_runs(200)
        except sa.exc.DBAPIError as error:
            self._note_database_problem(error)
            return
        ratios = []
        for run in recorded[:100]:
            plan = run.plan or {}
            epochs = [record.epoch_seconds for record in run.epochs[1:] if record.epoch_seconds]
            try:
                if epochs and plan.get("train_images") and plan.get("batch_size"):
                    estimate = epoch_seconds(run.settings.config, int(plan["train_images"]), int(plan["batch_size"]))
                    if estimate > 0:
                        ratios.append(statistics.median(epochs) / estimate)
            except (ValueError, TypeError):
                continue
        speed = Speed(scale=min(10.0, max(0.2, statistics.median(ratios))), measured_epochs=len(ratios)) if ratios else Speed()
        with self._lock:
            self._recorded, self._speed, self._estimates = recorded, speed, {}

    def estimated_seconds(self, settings: TrainingSettings) -> float:
        """How long a training of these settings takes here: this server's recorded runs of the same preset and data
        size, else the epoch estimate times its epochs."""
        key = json.dumps(settings.to_dict(), sort_keys=True, default=str)
        if key in self._estimates:
            return self._estimates[key]
        same = [
            run.ended_at - run.started_at
            for run in self._recorded
            if run.settings.dataset == settings.dataset
            and run.settings.arch == settings.arch
            and run.settings.train_size == settings.train_size
            and run.settings.config == settings.config
            and run.ended_at
            and run.started_at
        ]
        if same:
            seconds = float(statistics.median(same))
        else:
            from mnistlab.datasets import DATASETS

            images = settings.train_size or int(DATASETS[settings.dataset].published_train_size * (1 - settings.validation_split))
            recipe = settings.recipe_for(images)
            seconds = 5.0 + recipe.max_epochs * epoch_seconds(settings.config, images, recipe.batch_size, self._speed)
        self._estimates[key] = seconds
        return seconds

    def shutdown(self) -> None:
        """Stop: the backend's places end, and this server's waiting and training runs end as interrupted."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self.backend.shutdown()
        try:
            self.store.forget_server(self.server_id)
        except sa.exc.DBAPIError as error:
            self._note_database_problem(error)

    # Inside: following networks

    def _follow(self, live: _Live, network: _Network) -> None:
        """`live` follows `network` from now on, and sees what it has done so far."""
        network.followers.append(live.run_id)
        live.network = network
        live.phase, live.plan, live.latest = network.phase, network.plan, network.latest
        live.curve, live.epochs, live.worker = list(network.curve), list(network.epochs), network.worker
        if network.job is not None:
            live.status, live.started_at = RUNNING, network.started_at
        live.dirty = True

    def _unfollow(self, live: _Live, network: _Network) -> None:
        if live.run_id in network.followers:
            network.followers.remove(live.run_id)
        live.network = None
        if not network.followers and network.job is None and network in self._waiting:
            self._waiting.remove(network)
            self._networks.pop(network.key, None)

    def _finished_with_key(self, key: str) -> RunSnapshot | None:
        try:
            return self.store.finished_with_key(key)
        except sa.exc.DBAPIError as error:
            self._note_database_problem(error)
            return None

    def _take_result(self, live: _Live, finished: RunSnapshot) -> None:
        """A run identical to one that finished takes its result, curve and model at once (called under the lock)."""
        folder = self.store.run_folder(live.run_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name in (MODEL_FILE, PREDICTIONS_FILE):
                _link_or_copy(finished.model_path.parent / name, folder / name)
        except OSError as error:
            live.status, live.error = FAILED, _("The finished result could not be copied: {error}").format(error=error.strerror or error)
            live.ended_at = time.time()
            live.unsaved = True
            live.done.set()
            return
        live.status, live.phase = FINISHED, FINISHED
        live.plan, live.latest, live.curve, live.epochs = finished.plan, finished.latest_batch, list(finished.curve), list(finished.epochs)
        live.result, live.model_path, live.worker = finished.result, folder / MODEL_FILE, finished.worker
        live.started_at = live.ended_at = time.time()
        live.shared_from = finished.run_id
        live.unsaved = True
        live.done.set()

    # Inside: the fair queue

    def _trained_seconds(self) -> dict[str, float]:
        if self._trained is None:
            try:
                self._trained = self.store.training_seconds_by_owner(time.time() - FAIRNESS_HOURS * 3600)
            except sa.exc.DBAPIError:
                return {}
        return self._trained

    def _priority(self, network: _Network) -> tuple[float, float]:
        trained = self._trained_seconds()
        owners = [self._live[run].owner for run in network.followers if run in self._live]
        least = min((0.0 if owner == SERVER_OWNER else trained.get(owner, 0.0) for owner in owners), default=0.0)
        return least, network.queued_at

    def _fair_order(self) -> list[_Network]:
        return sorted(self._waiting, key=self._priority)

    def _pack_of(self, network: _Network, order: list[_Network]) -> list[_Network]:
        """The networks that train in one job with `network`: itself and, when it packs, the waiting ones that read its batches."""
        chosen = [network]
        if network.packable:
            key = pack_key(network.settings)
            chosen += [other for other in order if other is not network and other.packable and pack_key(other.settings) == key][: MAX_PACK - 1]
        return chosen

    def _queued_jobs(self) -> list[list[_Network]]:
        """The waiting networks as the jobs they will train in, in the fair order: a pack is one place in the queue."""
        order, jobs = self._fair_order(), []
        while order:
            job = self._pack_of(order[0], order)
            jobs.append(job)
            order = [network for network in order if network not in job]
        return jobs

    def _place_of(self, live: _Live) -> tuple[int, list[list[_Network]]] | None:
        """The run's place in the queue (1 for the next job) and the queued jobs; None when it does not wait."""
        if live.status != QUEUED or live.network is None or live.network not in self._waiting:
            return None
        jobs = self._queued_jobs()
        return next(place for place, job in enumerate(jobs, 1) if live.network in job), jobs

    def _gathering(self, live: _Live, place: tuple[int, list[list[_Network]]] | None) -> bool:
        """Whether the run (at `place`, see `_place_of`) is in the next job, a place is free, and it only waits for
        classmates pressing Train now."""
        return place is not None and place[0] == 1 and live.network.packable and len(self._jobs) < self.backend.capacity

    def _wait_estimate(self, place: tuple[int, list[list[_Network]]] | None) -> float | None:
        """The estimated wait of a run at `place` (see `_place_of`); None when it does not wait."""
        if place is None:
            return None
        position, queued = place
        capacity = max(1, self.backend.capacity)
        now = time.time()
        remaining = []
        for job in self._jobs.values():
            longest = max(self.estimated_seconds(network.settings) for network in job.networks)
            remaining.append(max(0.0, longest - (now - job.started_at)))
        free = max(0, capacity - len(self._jobs))
        # A pack ahead counts as its longest network: it takes at least that (longer when many networks share the cores).
        ahead = [max(self.estimated_seconds(network.settings) for network in job) for job in queued[: position - 1]]
        # Places free up in order; the networks ahead take them one after another.
        finish = sorted([0.0] * free + remaining)
        for seconds in ahead:
            finish[0] += seconds
            finish.sort()
        return finish[0] if finish else 0.0

    def _credit(self, network: _Network) -> None:
        """Add a finished network's seconds to its followers' totals (shared equally)."""
        if network.started_at is None:
            return
        trained = self._trained_seconds()
        followers = [self._live[run].owner for run in network.followers if run in self._live]
        for owner in followers:
            trained[owner] = trained.get(owner, 0.0) + (time.time() - network.started_at) / max(1, len(followers))

    # Inside: snapshots of runs

    def _snapshot_of(self, live: _Live) -> RunSnapshot:
        network = live.network
        place = self._place_of(live)  # the queue, grouped into jobs once for the place, the wait and the gathering
        return RunSnapshot(
            run_id=live.run_id,
            owner=live.owner,
            status=live.status,
            phase=live.phase,
            settings=live.settings,
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
            queue_position=place[0] if place is not None else None,
            worker=live.worker,
            training_key=live.training_key,
            shared_from=live.shared_from,
            watchers=len(network.followers) if network is not None else 1,
            wait_seconds=self._wait_estimate(place),
            gathering=self._gathering(live, place),
            saving_delayed=live.unsaved,
            stopping=live.stopping,
            stopped_at=live.stopped_at,
        )

    # Inside: dispatching

    def _next_job(self) -> list[_Network] | None:
        """The networks of the next job: the fairest eligible network, and those that can share its batches."""
        now = time.monotonic()
        order = self._fair_order()
        for network in order:
            if network.packable and now - network.queued_at < GATHER_SECONDS:
                continue  # classmates may be pressing Train in this same moment: wait for them
            return self._pack_of(network, order)
        return None

    def _dispatch_loop(self) -> None:
        while True:
            with self._lock:
                chosen = None
                while not self._stopping:
                    if self._waiting and len(self._jobs) < self.backend.capacity:
                        chosen = self._next_job()
                        if chosen:
                            break
                    self._lock.wait(0.25)
                if self._stopping:
                    return
                job = _Job(next(self._job_ids), chosen, time.time())
                self._jobs[job.job_id] = job
                for index, network in enumerate(chosen):
                    self._waiting.remove(network)
                    network.job, network.index, network.started_at, network.phase = job, index, job.started_at, "starting"
                    for run in network.followers:
                        live = self._live[run]
                        live.status, live.phase, live.started_at, live.dirty = RUNNING, "starting", job.started_at, True
                spec = JobSpec(
                    job.job_id,
                    tuple(network.settings for network in chosen),
                    chosen[0].extra_train,
                    chosen[0].extra_tests,
                    chosen[0].precision,
                    packed=chosen[0].packable,
                )
                self._lock.notify_all()
            try:
                self.backend.start(spec, lambda event, job_id=job.job_id: self._on_event(job_id, event))
            except Exception as error:  # noqa: BLE001 (a backend that cannot start a job fails that job, not the server)
                self._on_event(job.job_id, JobFailed(f"The training could not start: {error}"))
                continue
            # Stop may have been pressed between leaving the queue and reaching the worker.
            with self._lock:
                controls = [
                    (job.job_id, network.index, STOP)
                    for network in chosen
                    if network.followers and all(self._live[run].stopping for run in network.followers)
                ]
            for control in controls:
                self.backend.control(*control)

    # Inside: events

    def _on_event(self, job_id: int, event: JobEvent) -> None:
        """Apply one event of a job to its networks and their runs; never raises (it runs on the backend's thread)."""
        try:
            self._apply(job_id, event)
        except Exception as error:  # noqa: BLE001 (a bug or a full disk here must not kill the backend's thread)
            import traceback

            traceback.print_exc()
            self.database_problem = f"{type(error).__name__}: {error}"

    def _apply(self, job_id: int, event: JobEvent) -> None:
        ended: list[tuple[_Live, str, dict]] = []
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return
            if isinstance(event, WorkerStarted):
                for network in job.networks:
                    network.worker = event.where
                    for live in self._followers(network):
                        live.worker, live.dirty = event.where, True
            elif isinstance(event, PhaseChanged):
                for network in job.networks if event.network is None else [job.networks[event.network]]:
                    network.phase = event.phase
                    for live in self._followers(network):
                        if not live.stopping:
                            live.phase, live.dirty = event.phase, True
            elif isinstance(event, (PlanReady, BatchDone, EpochDone, Stopped)):
                network = job.networks[event.network]
                self._progress(network, event)
            elif isinstance(event, NetworkDone):
                network = job.networks[event.network]
                ended += self._network_done(network, event)
            elif isinstance(event, NetworkFailed):
                network = job.networks[event.network]
                if not network.done:
                    network.done = True
                    self._networks.pop(network.key, None)
                    ended += [(live, FAILED, {"error": event.reason}) for live in self._followers(network)]
            elif isinstance(event, (JobFailed, JobEnded)):
                reason = event.reason if isinstance(event, JobFailed) else _("The training ended without a result.")
                for network in job.networks:
                    if not network.done:
                        network.done = True
                        self._networks.pop(network.key, None)
                        ended += [(live, FAILED, {"error": reason}) for live in self._followers(network)]
                    self._credit(network)
                del self._jobs[job_id]
                self._lock.notify_all()
        for live, status, values in ended:
            self._end(live, status, **values)
        if isinstance(event, (PlanReady, EpochDone, PhaseChanged, Stopped, WorkerStarted)):
            with self._lock:
                runs = [live for network in job.networks for live in self._followers(network)]
            for live in runs:
                self._persist(live)

    def _followers(self, network: _Network) -> list[_Live]:
        return [self._live[run] for run in network.followers if run in self._live]

    def _progress(self, network: _Network, event) -> None:
        if isinstance(event, PlanReady):
            network.plan = event.plan
        elif isinstance(event, BatchDone):
            network.latest = event.progress
            if on_curve(event.progress):
                network.curve.append(event.progress)
        elif isinstance(event, EpochDone):
            network.epochs.append(event.record)
        elif isinstance(event, Stopped):
            network.stopped_at = event.point
        for live in self._followers(network):
            if isinstance(event, PlanReady):
                live.plan = event.plan
            elif isinstance(event, BatchDone):
                live.latest = event.progress
                if on_curve(event.progress):
                    live.curve.append(event.progress)
            elif isinstance(event, EpochDone):
                live.epochs.append(event.record)
            elif isinstance(event, Stopped) and live.stopping:
                live.stopped_at, live.phase = event.point, "stopped: scoring the model"
            live.dirty = True

    def _network_done(self, network: _Network, event: NetworkDone) -> list[tuple[_Live, str, dict]]:
        """A network's model arrived: at its end for every follower, or as a snapshot for those who stopped."""
        receivers = self._followers(network) if event.final else [self._live[run] for run in network.snapshot_for if run in self._live]
        if event.final:
            network.done = True
            self._networks.pop(network.key, None)
        else:
            network.snapshot_for = []
        ended = []
        first_folder = None
        for live in receivers:
            folder = self.store.run_folder(live.run_id)
            try:
                folder.mkdir(parents=True, exist_ok=True)
                if first_folder is None:
                    _write_atomically(folder / MODEL_FILE, event.model_bytes)
                    arrays = {"probabilities": event.probabilities, "labels": event.labels}
                    if event.test_images is not None:
                        arrays["images"] = event.test_images
                    _write_atomically(folder / PREDICTIONS_FILE, _npz_bytes(arrays))
                    first_folder = folder
                else:
                    for name in (MODEL_FILE, PREDICTIONS_FILE):
                        _link_or_copy(first_folder / name, folder / name)
            except OSError as error:
                reason = _("The trained model could not be saved in {folder}: {error}.").format(folder=folder, error=error.strerror or error)
                ended.append((live, FAILED, {"error": reason}))
                continue
            live.result = event.result
            live.epochs = list(event.result.history)
            status = CANCELLED if event.result.stop_reason == "cancelled" else FINISHED
            note = live.cancel_note
            if not event.final:
                others = len([run for run in network.followers if run != live.run_id])
                note = note or ngettext(
                    "You stopped watching: your run keeps the model as it was then. {count} classmate goes on training it.",
                    "You stopped watching: your run keeps the model as it was then. {count} classmates go on training it.",
                    others,
                ).format(count=others)
                network.followers.remove(live.run_id)
                live.network = None
            ended.append((live, status, {"error": note, "model_path": folder / MODEL_FILE}))
        return ended

    def _end(self, live: _Live, status: str, *, error: str | None = None, model_path: Path | None = None) -> None:
        """The run is over: write it down, and wake whoever waits for it."""
        with self._lock:
            if live.status not in ACTIVE:
                return
            live.status, live.phase, live.error, live.model_path = status, status, error, model_path
            live.ended_at = time.time()
            live.stopping = False
            live.dirty = True
            self._lock.notify_all()
        self._persist(live)
        live.done.set()

    # Inside: the database

    def _note_database_problem(self, error: BaseException) -> None:
        from mnistlab.database import describe_problem

        self.database_problem = describe_problem(error, self.store.database.url)

    def _persist(self, live: _Live) -> bool:
        """Write the run's state now; when the database does not answer, keep it for the keeper to write later."""
        with self._lock:
            snapshot = self._snapshot_of(live)
            live.dirty = False
            live.persisted_at = time.monotonic()
        try:
            self.store.save_state(snapshot)
        except (sa.exc.DBAPIError, OSError) as error:
            self._note_database_problem(error)
            with self._lock:
                live.unsaved = True
            return False
        with self._lock:
            live.unsaved = False
        return True

    def _keeper_loop(self) -> None:
        """Every second: write dirty curves and delayed saves, cancel abandoned runs, keep heartbeats, sweep dead runs.

        Nothing here may end the thread: a database that is locked or gone is retried on the next round."""
        last_heartbeat = last_sweep = 0.0
        delay = 1.0
        while True:
            with self._lock:
                if self._stopping:
                    return
            try:
                delay = 1.0 if self._keep(last_heartbeat, last_sweep) else min(30.0, delay * 2)
                now = time.monotonic()
                if now - last_heartbeat > 10:
                    last_heartbeat = now
                if now - last_sweep > 60:
                    last_sweep = now
            except Exception as error:  # noqa: BLE001 (the keeper must outlive any one failure)
                self._note_database_problem(error)
                delay = min(30.0, delay * 2)
            time.sleep(delay)

    def _keep(self, last_heartbeat: float, last_sweep: float) -> bool:
        """One round of the keeper; False when the database did not answer (the next round waits longer)."""
        now = time.monotonic()
        with self._lock:
            pending = [
                live
                for live in self._live.values()
                if live.unsaved or (live.dirty and now - live.persisted_at >= PERSIST_EVERY) or (live.status not in ACTIVE and live.dirty)
            ]
            abandoned = [
                live.run_id
                for live in self._live.values()
                if live.status in ACTIVE and not live.stopping and live.owner != SERVER_OWNER and now - live.last_asked > self.abandon_after
            ]
            active = [live.run_id for live in self._live.values() if live.status in ACTIVE]
            old = [
                run_id
                for run_id, live in self._live.items()
                if live.status not in ACTIVE and live.ended_at and time.time() - live.ended_at > 600 and not live.unsaved
            ]
            for run_id in old:
                del self._live[run_id]
        healthy = all([self._persist(live) for live in pending])
        for run_id in abandoned:
            self.cancel(
                run_id,
                note=_("Cancelled because no page asked about it for {seconds} s (the tab was closed); the queue moved on.").format(
                    seconds=int(self.abandon_after)
                ),
            )
        try:
            if now - last_heartbeat > 10:
                self.store.heartbeat(active)
                self.store.server_heartbeat(self.server_id)
                self._refresh_recorded()
            if now - last_sweep > 60:
                # Runs of another replica that stopped answering (a shared database): they are not coming back.
                self.store.interrupt_stale(older_than=self._stale_after)
        except sa.exc.DBAPIError as error:
            self._note_database_problem(error)
            return False
        if healthy:
            self.database_problem = None
        return healthy


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".tmp-{path.name}")
    temporary.write_bytes(data)
    temporary.replace(path)


def _link_or_copy(source: Path, target: Path) -> None:
    """The same file in another run's folder: a hard link where the disk allows it (no extra space), else a copy."""
    temporary = target.with_name(f".tmp-{target.name}")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        temporary.write_bytes(source.read_bytes())
    temporary.replace(target)
