"""Training jobs for the web app: a class's trainings on a server, shared, packed and fairly queued.

`JobManager.submit(settings, owner)` records a run in the database and returns its id at
once. A run is one student's record (results, save, share, compare); what trains is a
*network*, and a run follows one:

- **Same settings, one training.** Runs whose settings, seed and data are the same follow
  one network (`mnistlab.following`): 25 students pressing Train on a lesson's step watch
  one training. A run identical to one that finished takes its result at once.
- **Packs and a fair queue** (`mnistlab.training_queue`, whose rules are `mnistlab.scheduling`'s). Dense networks that
  read the same batches train together in one job (`mnistlab.packing`); a free place goes
  to the student who has trained least, then who waited longest; a run knows its place
  and wait (`mnistlab.estimates`). A student has one active run at a time.
- **Limits.** Networks over the server's limits are refused before anything is queued.

A job runs on the backend (`mnistlab.backend`: worker processes, or a Ray cluster); nothing
trains in the web server. Its events (`mnistlab.job_events`) update the runs in memory,
which `mnistlab.run_keeper` writes to the database (a busy database delays saving, never a
thread). Stop honours one student: a network nobody else follows stops after its batch and
keeps its model; one that classmates still watch hands that student a snapshot and goes on.
A run no page has asked about for `abandon_after` seconds, whose owner has no page open, is
cancelled (the server's own runs never are). Each server process has its own id and marks as interrupted only the runs
of servers that are gone, never a live replica's.
"""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from mnistlab import job_events
from mnistlab.backend import Backend, Place, ServerLoad
from mnistlab.database import describe_problem, is_busy
from mnistlab.datasets import Dataset
from mnistlab.estimates import Estimates
from mnistlab.following import MODEL_FILE, PREDICTIONS_FILE, Job, LiveRun, Network, Registry, follow, take_result, training_key, unfollow
from mnistlab.i18n import _
from mnistlab.precision import precision_for
from mnistlab.run_keeper import DEAD_AFTER, PERSIST_EVERY, RunKeeper
from mnistlab.runs import ACTIVE, CANCELLED, FINISHED, RUNNING, RunSnapshot, RunStore
from mnistlab.scheduling import SERVER_OWNER
from mnistlab.settings import TrainingSettings
from mnistlab.sizing import Limits, Speed, check_size
from mnistlab.training_queue import GATHER_SECONDS, TrainingQueue
from mnistlab.worker import SNAPSHOT, STOP, JobEvent, JobFailed, JobSpec, LabelledImages

# Also the names that pages, tests and benchmarks import from here.
__all__ = ["GATHER_SECONDS", "MODEL_FILE", "PERSIST_EVERY", "PREDICTIONS_FILE", "SERVER_OWNER", "Backend", "JobManager", "ServerLoad", "training_key"]


class OneRunAtATimeError(ValueError):
    """The student already has a run waiting or training."""


class DatabaseBusyError(ValueError):
    """The database did not answer in time: nothing was started, the student may press again."""


class DatabaseProblemError(ValueError):
    """The database cannot record a run (a full disk, a folder it cannot write, a server gone): nothing was started, and
    pressing again will not help until the teacher fixes it."""


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
        self._registry = Registry()
        self._lock = self._registry.lock
        self._live = self._registry.live
        self._job_ids = itertools.count(1)
        self._estimates = Estimates()
        self._queue = TrainingQueue(self._registry, store, self._estimates, lambda: self.backend.capacity)
        self._stopping = False
        self.database_problem: str | None = None
        # Whether an owner has a page open now (the web app sets it: `mnistlab_ui.presence`). A run whose owner has one
        # is never abandoned, however long its page takes to ask about it.
        self.page_open: Callable[[str], bool] = lambda owner: False
        store.register_server(self.server_id, self.host, os.getpid())
        self.interrupted_at_start = store.interrupt_dead_servers(self.server_id, self.host, stale_after=DEAD_AFTER)
        self._refresh_recorded()
        self._keeping = RunKeeper(
            store,
            self._registry,
            self.server_id,
            self.host,
            os.getpid(),
            snapshot_of=self._snapshot_of,
            cancel_abandoned=self._cancel_abandoned,
            page_open=lambda owner: self.page_open(owner),
            refresh=self._refresh_recorded,
            note_problem=self._note_problem,
            abandon_after=abandon_after,
            stale_after=self._stale_after,
        )
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="mnistlab-dispatcher", daemon=True)
        self._dispatcher.start()
        self._keeping.start()
        self._keeper = self._keeping.thread

    @property
    def _stale_after(self) -> float:
        return max(120.0, 4 * self.abandon_after)

    # What pages use

    def precision(self, settings: TrainingSettings) -> str:
        return precision_for(settings.arch, settings.config.is_convolutional, self.environ)

    def check(self, settings: TrainingSettings, train_images: int | None = None) -> None:
        """Refuse a network over this server's limits (a ValueError that says what to make smaller)."""
        from mnistlab.datasets import published_train_size

        images = train_images or settings.train_size or int(published_train_size(settings.dataset) * (1 - settings.validation_split))
        speed = self.speed(settings.config.is_convolutional)
        check_size(settings.config, images, settings.batch_size or settings.base_recipe.batch_size, self.limits, speed)

    def submit(
        self,
        settings: TrainingSettings,
        owner: str,
        *,
        shared_key: str | None = None,
        extra_train: LabelledImages | None = None,
        extra_tests: dict[str, LabelledImages] | None = None,
        own_data: Dataset | None = None,
    ) -> int:
        """Queue a training for `owner` (or join the same one); returns its run id. `own_data` is a set of the class's
        own (`mnistlab.class_set_data`), which the job takes with it.

        Raises OneRunAtATimeError when the owner already has a run waiting or training, a ValueError when the
        network is over the server's limits, DatabaseBusyError when the database did not answer in time, and
        DatabaseProblemError when it cannot record the run (a full disk: says what is wrong and what to do)."""
        extra_tests = dict(extra_tests or {})
        registry = self._registry
        if owner != SERVER_OWNER:
            with self._lock:
                mine = [live for live in self._live.values() if live.owner == owner and live.status in ACTIVE]
            if mine:
                raise OneRunAtATimeError(
                    _("You already have a training waiting or running (run {run}). Stop it, or wait until it ends, to start another.").format(
                        run=mine[0].run_id
                    )
                )
            self.check(settings, len(own_data.y_train) if own_data is not None else None)
        precision = self.precision(settings)
        key = training_key(settings, precision, extra_train, extra_tests, own_data)
        try:
            run_id = self.store.create(owner, settings, self.server_id, shared_key=shared_key, training_key=key)
        except sa.exc.DBAPIError as error:
            self._note_problem(error)
            if is_busy(error):
                raise DatabaseBusyError(_("The runs database is busy, so your training was not started. Press Train again in a moment.")) from error
            raise DatabaseProblemError(
                _("Your training was not started: {problem} Tell your teacher.").format(problem=describe_problem(error, self.store.database.url))
            ) from error
        live = LiveRun(run_id, settings, owner, shared_key, key, time.time())
        finished = self._finished_with_key(key) if key not in registry.networks else None
        with self._lock:
            self._live[run_id] = live
            network = registry.networks.get(key)
            if network is not None and network.job is not None and all(self._live[run].stopping for run in network.followers):
                network = None  # it is stopping for everyone who watched it: a new training starts
            if network is None and finished is not None:
                take_result(live, finished, self.store.run_folder(live.run_id))
            else:
                if network is None:
                    network = Network(key, settings, extra_train, extra_tests, precision, time.monotonic(), own_data=own_data)
                    registry.networks[key] = network
                    registry.waiting.append(network)
                follow(live, network)
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
        return self._with_live(self.store.for_owner(owner, limit), lambda live: live.owner == owner)

    def runs_since(self, owners, since: float) -> list[RunSnapshot]:
        """The runs these owners pressed at `since` or later, newest first: active ones as they are now (a class's race)."""
        owners = set(owners)
        return self._with_live(self.store.for_owners_since(owners, since), lambda live: live.owner in owners and live.created_at >= since)

    def _with_live(self, stored: list[RunSnapshot], wanted) -> list[RunSnapshot]:
        """Stored runs with the live ones' current state, and the `wanted` live runs not saved yet, newest first."""
        with self._lock:
            known = {snapshot.run_id for snapshot in stored}
            unsaved = [self._snapshot_of(live) for live in self._live.values() if wanted(live) and live.run_id not in known]
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
                    unfollow(self._registry, live, network)
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

    def forget(self, run_ids) -> None:
        """Runs deleted from the database (a deleted class, `MNISTLAB_KEEP_DAYS`) are no longer shown from memory."""
        with self._lock:
            for run_id in run_ids:
                live = self._live.get(run_id)
                if live is not None and live.status not in ACTIVE:
                    del self._live[run_id]

    def position(self, run_id: int) -> int | None:
        """1 for the next job to start (networks that train in one pack share its place), 2 for the one after; None when not waiting."""
        with self._lock:
            live = self._live.get(run_id)
            place = self._queue.place_of(live) if live is not None else None
            return place[0] if place is not None else None

    def wait(self, run_id: int, timeout: float | None = None) -> bool:
        """Wait until the run is done (tests and scripts)."""
        with self._lock:
            live = self._live.get(run_id)
        return True if live is None else live.done.wait(timeout)

    @property
    def running(self) -> int:
        with self._lock:
            return sum(len(job.networks) for job in self._registry.jobs.values())

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._registry.waiting)

    def load(self) -> ServerLoad:
        """The queue and the training places, for the page that shows them."""
        places = self.backend.places()
        with self._lock:
            jobs = self._registry.jobs
            shown = []
            for where, job_id in places:
                job = jobs.get(job_id) if job_id is not None else None
                if job is None:
                    shown.append(Place(where, None, None))
                    continue
                followers = [run for network in job.networks for run in network.followers]
                first = self._live.get(followers[0]) if followers else None
                shown.append(Place(where, first.run_id if first else None, first.owner if first else None, len(job.networks), len(followers)))
            running, waiting = sum(len(job.networks) for job in jobs.values()), len(self._registry.waiting)
        return ServerLoad(self.backend.describe(), self.backend.capacity, running, waiting, tuple(shown))

    def active_runs(self) -> list[RunSnapshot]:
        """Every run waiting or training on this server: the training ones, then the waiting ones in queue order."""
        with self._lock:
            training = [live for live in self._live.values() if live.status == RUNNING]
            waiting = [live for network in self._queue.fair_order() for live in (self._live[run] for run in network.followers)]
            return [self._snapshot_of(live) for live in sorted(training, key=lambda live: live.run_id) + waiting]

    def speed(self, convolutional: bool) -> Speed:
        """This server's training speed for convolutional (or dense) networks against the estimate, from its own recorded
        epochs of networks of that kind that trained alone (refreshed by the keeper)."""
        return self._estimates.speed(convolutional)

    def estimated_seconds(self, settings: TrainingSettings) -> float:
        """How long a training of these settings takes here (`mnistlab.estimates`)."""
        return self._estimates.seconds(settings)

    def shutdown(self) -> None:
        """Stop: the backend's places end, and this server's waiting and training runs end as interrupted."""
        with self._lock:
            self._stopping = self._keeping.stopping = True
            self._lock.notify_all()
        self.backend.shutdown()
        try:
            self.store.forget_server(self.server_id)
        except sa.exc.DBAPIError as error:
            self._note_problem(error)

    # Inside: dispatching

    def _dispatch_loop(self) -> None:
        registry = self._registry
        while True:
            with self._lock:
                chosen = None
                while not self._stopping:
                    if registry.waiting and len(registry.jobs) < self.backend.capacity:
                        chosen = self._queue.next_job()
                        if chosen:
                            break
                    self._lock.wait(0.25)
                if self._stopping:
                    return
                job = Job(next(self._job_ids), chosen, time.time())
                registry.jobs[job.job_id] = job
                for index, network in enumerate(chosen):
                    registry.waiting.remove(network)
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
                    own_data=chosen[0].own_data,
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

    # Inside: events (`mnistlab.job_events`)

    def _on_event(self, job_id: int, event: JobEvent) -> None:
        """Apply one event of a job to its networks and their runs; never raises (it runs on the backend's thread)."""
        try:
            with self._lock:
                applied = job_events.apply(self._registry, job_id, event, self.store.run_folder)
                for network in applied.job_over:
                    self._queue.credit(network)
            for live, status, values in applied.ended:
                self._end(live, status, **values)
            for live in applied.to_persist:
                self._persist(live)
        except Exception as error:  # noqa: BLE001 (a bug or a full disk here must not kill the backend's thread)
            import traceback

            traceback.print_exc()
            self.database_problem = f"{type(error).__name__}: {error}"

    def _end(self, live: LiveRun, status: str, *, error: str | None = None, model_path: Path | None = None) -> None:
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

    # Inside: the database (`mnistlab.run_keeper` writes; the estimates are `mnistlab.estimates`')

    def _persist(self, live: LiveRun) -> bool:
        return self._keeping.persist(live)

    def _note_problem(self, error: BaseException | None) -> None:
        """Remember what is wrong with the database for the pages to say (None: it answers again)."""
        if error is None:
            self.database_problem = None
            return
        self.database_problem = describe_problem(error, self.store.database.url)

    def _cancel_abandoned(self, run_id: int) -> None:
        self.cancel(
            run_id,
            note=_("Cancelled because no page asked about it for {seconds} s (the tab was closed); the queue moved on.").format(
                seconds=int(self.abandon_after)
            ),
        )

    def _refresh_recorded(self) -> None:
        """Read this server's recorded runs again (outside the lock): its speed and how long each kind of run takes."""
        try:
            recorded = self.store.recorded_runs(200)
        except sa.exc.DBAPIError as error:
            self._note_problem(error)
            return
        self._estimates.update(recorded)

    def _finished_with_key(self, key: str) -> RunSnapshot | None:
        try:
            return self.store.finished_with_key(key)
        except sa.exc.DBAPIError as error:
            self._note_problem(error)
            return None

    # Inside: snapshots of runs

    def _snapshot_of(self, live: LiveRun) -> RunSnapshot:
        network = live.network
        place = self._queue.place_of(live)  # the queue, grouped into jobs once for the place, the wait and the gathering
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
            wait_seconds=self._queue.wait_estimate(place),
            gathering=self._queue.gathering(live, place),
            saving_delayed=live.unsaved,
            stopping=live.stopping,
            stopped_at=live.stopped_at,
        )
