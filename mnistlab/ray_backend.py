"""Trainings on a Ray cluster: a school's computer lab as one training backend.

With MNISTLAB_RAY_ADDRESS set, the web server joins the lab's Ray cluster as a
client and keeps one long-lived `TrainingActor` for every `cpus_per_training` CPUs
the cluster has. Each actor is a Python process on one of the lab's PCs that
imported TensorFlow once and keeps its datasets loaded, so a job starts at once, as
with the local worker processes. A job runs in the actor through the same
`mnistlab.worker.run_job` as everywhere else; its events are kept in the actor and
the server fetches the new ones a few times a second. Stop (and snapshot) is an actor
call that reaches the job's controls. When a PC is switched off (or its process dies), the
fetch fails: the job fails with a message naming the PC, the other jobs go on, and
the pool of actors is topped up from what the cluster has left. PCs that join later
add actors. Nothing in MNIST Lab imports Ray unless this backend is chosen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import ray

from mnistlab.worker import TERMINAL_EVENTS, JobControls, JobEvent, JobFailed, JobSpec, WorkerStarted, run_job, where_am_i

Report = Callable[[JobEvent], None]
# How often the server fetches a running job's new events, and how long it waits for an answer.
POLL_EVERY = 0.2
ANSWER_TIMEOUT = 30.0
# How often the pool of actors is matched to the cluster's CPUs.
RESIZE_EVERY = 5.0


@ray.remote
class TrainingActor:
    """One training place on a PC of the cluster: trains one job at a time and keeps its events."""

    def __init__(self, nice: int = 10):
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # As the local worker processes do: a PC that also serves the app (the head) keeps serving pages quickly.
        if nice:
            try:
                os.nice(nice)
            except OSError:
                pass
        import tensorflow  # noqa: F401 (imported once, so jobs start at once)

        self._lock = threading.Lock()
        self._events: list[JobEvent] = []
        self._events_of: int | None = None  # the job the kept events belong to
        self._controls: JobControls | None = None
        self._current: int | None = None
        self._early: list[tuple[int, int, str]] = []  # controls that overtook their job

    def where(self) -> tuple[int, str]:
        """This actor's process id and where it runs ("process 1234 on lab-pc-07")."""
        import os

        return os.getpid(), where_am_i()

    def train(self, spec: JobSpec) -> None:
        controls = JobControls(len(spec.networks))
        with self._lock:
            self._events, self._events_of = [], spec.job_id
            self._current, self._controls = spec.job_id, controls
            for job_id, network, action in self._early:
                if job_id == spec.job_id:
                    controls.request(network, action)
            self._early = [early for early in self._early if early[0] != spec.job_id]
        run_job(spec, self._emit, controls)
        with self._lock:
            self._current, self._controls = None, None

    def _emit(self, event: JobEvent) -> None:
        with self._lock:
            self._events.append(event)

    def events(self, job_id: int, start: int) -> list[JobEvent]:
        """Job `job_id`'s events from number `start` on (none yet if it has not started here)."""
        with self._lock:
            return self._events[start:] if self._events_of == job_id else []

    def control(self, job_id: int, network: int, action: str) -> None:
        with self._lock:
            if self._current == job_id and self._controls is not None:
                self._controls.request(network, action)
            else:
                self._early = [*self._early[-50:], (job_id, network, action)]


class _Place:
    """An actor of the pool, where it runs, and the job it trains (if any)."""

    def __init__(self, actor, identity: tuple[int, str]):
        self.actor = actor
        self.pid, self.where = identity
        self.job_id: int | None = None
        self.dead = False


class RayBackend:
    """A pool of training actors on a Ray cluster; `capacity` follows the cluster's CPUs."""

    name = "ray"

    def __init__(self, address: str, cpus_per_training: int = 2, nice: int = 10):
        if cpus_per_training < 1:
            raise ValueError(f"A training needs at least 1 CPU, got {cpus_per_training}.")
        self.address = address
        self.cpus_per_training = cpus_per_training
        self.nice = nice
        try:
            ray.init(address=address, namespace="mnistlab", log_to_driver=False, ignore_reinit_error=True)
        except Exception as error:
            raise ValueError(f"Cannot join the Ray cluster at {address!r} (MNISTLAB_RAY_ADDRESS): {error}") from error
        self._lock = threading.Lock()
        self._resize_lock = threading.Lock()
        self._places: list[_Place] = []
        self._pending: list = []  # actors asked for, not yet ready
        self._stopping = threading.Event()
        self._resize()
        self._keeper = threading.Thread(target=self._keep, name="mnistlab-ray-pool", daemon=True)
        self._keeper.start()

    # The pool

    def _wanted(self) -> int:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        return max(1, cpus // self.cpus_per_training)

    def _resize(self) -> None:
        """Ask for actors up to what the cluster's CPUs allow, and move ready ones into the pool.

        One resize at a time (the keeper thread and `wait_until_ready` both call it): two at
        once would each move the same ready actor into the pool, or ask for the same actor twice.
        """
        with self._resize_lock:
            self._resize_once()

    def _resize_once(self) -> None:
        ready, still_pending = [], []
        for actor, reference in self._pending:
            done, _ = ray.wait([reference], timeout=0)
            if not done:
                still_pending.append((actor, reference))
                continue
            try:
                ready.append(_Place(actor, ray.get(reference)))
            except Exception:  # noqa: BLE001, S112 (an actor that died while starting is simply not used)
                continue
        self._check_idle_places()
        wanted = self._wanted()
        with self._lock:
            known = {id(place.actor) for place in self._places}
            self._places = [place for place in self._places if not place.dead] + [place for place in ready if id(place.actor) not in known]
            self._pending = still_pending
            missing = wanted - len(self._places) - len(self._pending)
        for _ in range(max(0, missing)):
            actor = TrainingActor.options(num_cpus=self.cpus_per_training, max_concurrency=4).remote(self.nice)
            with self._lock:
                self._pending.append((actor, actor.where.remote()))

    def _check_idle_places(self) -> None:
        """An idle place whose PC was switched off is found here, before a student's run is sent to it."""
        with self._lock:
            idle = [place for place in self._places if not place.dead and place.job_id is None]
        for place in idle:
            try:
                ray.get(place.actor.where.remote(), timeout=10)
            except ray.exceptions.RayActorError:
                place.dead = True
            except Exception:  # noqa: BLE001, S112 (slow to answer is not dead; the next check will tell)
                continue

    def _keep(self) -> None:
        while not self._stopping.wait(RESIZE_EVERY if self._places else 0.5):
            try:
                self._resize()
            except Exception:  # noqa: BLE001, S112 (the cluster may be busy or briefly unreachable; try again later)
                continue

    def wait_until_ready(self, places: int = 1, timeout: float = 120.0) -> bool:
        """Wait until the pool has `places` actors ready (tests, scripts)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._resize()
            if self.capacity >= places:
                return True
            time.sleep(0.5)
        return False

    # The backend interface

    @property
    def capacity(self) -> int:
        with self._lock:
            return sum(1 for place in self._places if not place.dead)

    def start(self, spec: JobSpec, report: Report) -> None:
        with self._lock:
            place = next((place for place in self._places if not place.dead and place.job_id is None), None)
            if place is None:
                raise RuntimeError("No training place is free on the Ray cluster.")
            place.job_id = spec.job_id
        threading.Thread(target=self._follow, args=(place, spec, report), name=f"mnistlab-ray-job-{spec.job_id}", daemon=True).start()

    def _follow(self, place: _Place, spec: JobSpec, report: Report) -> None:
        """Start the job in its actor and pass its events on until it ends, or its PC does."""
        try:
            finished = place.actor.train.remote(spec)
            report(WorkerStarted(f"Ray, {place.where}"))
            seen = 0
            while True:
                events = ray.get(place.actor.events.remote(spec.job_id, seen), timeout=ANSWER_TIMEOUT)
                seen += len(events)
                for event in events:
                    if isinstance(event, WorkerStarted):
                        event = WorkerStarted(f"Ray, {event.where}")
                    report(event)
                    if isinstance(event, TERMINAL_EVENTS):
                        return
                done, _ = ray.wait([finished], timeout=0)
                if done:
                    ray.get(finished)  # Raises if the actor died; otherwise the last events come on the next fetch.
                time.sleep(POLL_EVERY)
        except Exception as error:  # noqa: BLE001 (a lost PC, a dead process: this job fails, the server goes on)
            place.dead = True
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            report(
                JobFailed(
                    f"The computer training this run ({place.where}) was switched off or its training process stopped, "
                    f"so this run is lost; other runs go on ({type(error).__name__}: {reason[:160]})."
                )
            )
            try:
                ray.kill(place.actor)
            except Exception:  # noqa: BLE001, S110 (it is gone already)
                pass
        finally:
            with self._lock:
                place.job_id = None

    def control(self, job_id: int, network: int, action: str) -> None:
        """Stop or snapshot one network of a running job (after its current batch)."""
        with self._lock:
            place = next((place for place in self._places if place.job_id == job_id), None)
        if place is not None:
            place.actor.control.remote(job_id, network, action)

    def worker_pids(self) -> list[int]:
        """The process ids of the pool's actors (they are on this machine when the cluster is: tests)."""
        with self._lock:
            return [place.pid for place in self._places if not place.dead]

    def places(self) -> list[tuple[str, int | None]]:
        """Where each training place is, and the job it trains."""
        with self._lock:
            return [(place.where, place.job_id) for place in self._places if not place.dead]

    def describe(self) -> str:
        resources = ray.cluster_resources()
        nodes = len([node for node in ray.nodes() if node.get("Alive")])
        with self._lock:
            starting = len(self._pending)
        return (
            f"a Ray cluster of {nodes} computer(s) with {int(resources.get('CPU', 0))} CPUs: {self.capacity} training(s) at once, "
            f"{self.cpus_per_training} CPUs each" + (f" ({starting} more starting)" if starting else "")
        )

    def shutdown(self) -> None:
        self._stopping.set()
        with self._lock:
            actors = [place.actor for place in self._places] + [actor for actor, _ in self._pending]
            self._places, self._pending = [], []
        for actor in actors:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001, S110 (already gone)
                pass
