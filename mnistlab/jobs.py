"""Background training jobs that a web page can poll, behind a bounded queue.

`TrainingQueue.submit(settings)` returns a `TrainingJob` at once; the job trains in
its own thread through the training engine and records its status, phase, progress
and history as it goes. At most `max_running` jobs train at the same time in one
process (two CPU cores do not go faster with more); the others wait in first-come
order and can report their place in the queue. A job can be cancelled while it waits
or while it trains.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable

from mnistlab.datasets import Dataset
from mnistlab.training import (
    STOP_CANCELLED,
    BatchProgress,
    EpochRecord,
    TrainedModel,
    TrainingListener,
    TrainingPlan,
    TrainingResult,
    TrainingSettings,
    train,
)

QUEUED = "queued"
RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
CANCELLED = "cancelled"

# About this many points per epoch are kept for the live curves.
CURVE_POINTS_PER_EPOCH = 40


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's state, safe to read from another thread."""

    job_id: int
    status: str
    phase: str
    queue_position: int | None
    plan: TrainingPlan | None
    latest_batch: BatchProgress | None
    curve: tuple[BatchProgress, ...]
    epochs: tuple[EpochRecord, ...]
    result: TrainingResult | None
    error: str | None
    elapsed: float

    @property
    def is_done(self) -> bool:
        return self.status in (FINISHED, FAILED, CANCELLED)


class TrainingJob(TrainingListener):
    """One training run in the background; it listens to the engine to record progress."""

    def __init__(self, job_id: int, settings: TrainingSettings, queue: "TrainingQueue", dataset: Dataset | None):
        self.job_id = job_id
        self.settings = settings
        self.dataset = dataset
        self.cancel_event = threading.Event()
        self.done_event = threading.Event()
        self._queue = queue
        self._lock = threading.Lock()
        self._status = QUEUED
        self._phase = "waiting in the queue"
        self._plan: TrainingPlan | None = None
        self._latest: BatchProgress | None = None
        self._curve: list[BatchProgress] = []
        self._epochs: list[EpochRecord] = []
        self._result: TrainingResult | None = None
        self._trained: TrainedModel | None = None
        self._error: str | None = None
        self._started_at: float | None = None
        self._ended_at: float | None = None

    # Listener methods, called from the training thread.
    def on_phase(self, phase: str) -> None:
        with self._lock:
            self._phase = phase

    def on_train_start(self, plan: TrainingPlan) -> None:
        with self._lock:
            self._plan = plan

    def on_batch_end(self, progress: BatchProgress) -> None:
        stride = max(1, progress.batches_per_epoch // CURVE_POINTS_PER_EPOCH)
        with self._lock:
            self._latest = progress
            if progress.batch % stride == 0 or progress.batch == progress.batches_per_epoch:
                self._curve.append(progress)

    def on_epoch_end(self, record: EpochRecord) -> None:
        with self._lock:
            self._epochs.append(record)

    def on_train_end(self, result: TrainingResult) -> None:
        with self._lock:
            self._result = result

    # What the page uses.
    @property
    def status(self) -> str:
        with self._lock:
            return self._status

    @property
    def trained(self) -> TrainedModel | None:
        with self._lock:
            return self._trained

    def cancel(self) -> None:
        """Ask the job to stop: a waiting job leaves the queue, a running one stops after its batch."""
        self.cancel_event.set()
        self._queue._wake()

    def wait(self, timeout: float | None = None) -> bool:
        return self.done_event.wait(timeout)

    def snapshot(self) -> JobSnapshot:
        position = self._queue.position(self)
        with self._lock:
            end = self._ended_at or time.time()
            return JobSnapshot(
                job_id=self.job_id,
                status=self._status,
                phase=self._phase,
                queue_position=position,
                plan=self._plan,
                latest_batch=self._latest,
                curve=tuple(self._curve),
                epochs=tuple(self._epochs),
                result=self._result,
                error=self._error,
                elapsed=end - self._started_at if self._started_at else 0.0,
            )

    # Called by the queue.
    def _set_running(self) -> None:
        with self._lock:
            self._status = RUNNING
            self._phase = "starting"
            self._started_at = time.time()

    def _finish(self, status: str, trained: TrainedModel | None = None, error: str | None = None) -> None:
        with self._lock:
            self._status = status
            self._trained = trained
            self._error = error
            self._phase = status
            self._ended_at = time.time()
        self.done_event.set()


TrainFunction = Callable[..., TrainedModel]


class TrainingQueue:
    """Runs at most `max_running` jobs at once; the others wait in first-come order."""

    def __init__(self, max_running: int = 1, train_function: TrainFunction = train):
        if max_running < 1:
            raise ValueError(f"At least one training must be allowed to run, got {max_running}.")
        self.max_running = max_running
        self._train = train_function
        self._condition = threading.Condition()
        self._waiting: list[TrainingJob] = []
        self._running = 0
        self._ids = itertools.count(1)

    def submit(self, settings: TrainingSettings, dataset: Dataset | None = None) -> TrainingJob:
        """Queue a training; it starts as soon as a place is free."""
        with self._condition:
            job = TrainingJob(next(self._ids), settings, self, dataset)
            self._waiting.append(job)
        threading.Thread(target=self._run, args=(job,), name=f"training-job-{job.job_id}", daemon=True).start()
        return job

    def position(self, job: TrainingJob) -> int | None:
        """1 for the next job to start, 2 for the one after it; None when not waiting."""
        with self._condition:
            try:
                return self._waiting.index(job) + 1
            except ValueError:
                return None

    @property
    def running(self) -> int:
        with self._condition:
            return self._running

    @property
    def waiting(self) -> int:
        with self._condition:
            return len(self._waiting)

    def _wake(self) -> None:
        with self._condition:
            self._condition.notify_all()

    def _run(self, job: TrainingJob) -> None:
        with self._condition:
            while not job.cancel_event.is_set() and (self._waiting[0] is not job or self._running >= self.max_running):
                self._condition.wait()
            self._waiting.remove(job)
            self._condition.notify_all()
            if job.cancel_event.is_set():
                job._finish(CANCELLED)
                return
            self._running += 1
        job._set_running()
        try:
            trained = self._train(job.settings, dataset=job.dataset, listeners=[job], cancel=job.cancel_event)
            status = CANCELLED if trained.result.stop_reason == STOP_CANCELLED else FINISHED
            job._finish(status, trained=trained)
        except ValueError as error:
            job._finish(FAILED, error=str(error))
        except Exception as error:  # noqa: BLE001 (the page shows it; the thread must not die silently)
            job._finish(FAILED, error=f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=5)}")
        finally:
            with self._condition:
                self._running -= 1
                self._condition.notify_all()


_default_queue: TrainingQueue | None = None
_default_lock = threading.Lock()


def default_queue() -> TrainingQueue:
    """The process-wide queue; MNISTLAB_MAX_TRAININGS sets how many run at once (default 1)."""
    global _default_queue
    with _default_lock:
        if _default_queue is None:
            value = os.environ.get("MNISTLAB_MAX_TRAININGS", "1")
            try:
                limit = int(value)
            except ValueError:
                raise ValueError(f"MNISTLAB_MAX_TRAININGS must be a whole number, got {value!r}.") from None
            _default_queue = TrainingQueue(max_running=limit)
        return _default_queue
