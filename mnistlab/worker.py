"""What a training worker does with one job, wherever it runs (a local process or a Ray node).

A `JobSpec` says which networks to train and how: one network (trained by
`mnistlab.training.train`), or several that share their batches (a pack, trained by
`mnistlab.packing.train_pack`). `run_job` trains them and reports `JobEvent`s through an
`emit` function as it goes: the worker's place, phase changes, and for each network (by
its index in the job) its plan, batches (at most `BATCH_EVENTS_PER_SECOND` a second,
and always the last of an epoch), epochs, a `Stopped` as soon as a Stop is honoured,
then one `NetworkDone` (the model as .keras bytes and the test-set predictions) or
`NetworkFailed`. The job ends with exactly one `JobEnded`, or `JobFailed` when nothing
of it can go on. `JobControls` carry Stop and "snapshot" (the model as it is now, for a
student who stops watching a training that classmates still watch) for each network;
they are honoured after the current batch. Events are plain frozen dataclasses, so they
cross process and machine boundaries by pickling.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from mnistlab.datasets import Dataset
from mnistlab.events import BatchProgress, EpochRecord, StopPoint, TrainingListener, TrainingPlan, TrainingResult
from mnistlab.precision import FLOAT32
from mnistlab.settings import TrainingSettings

BATCH_EVENTS_PER_SECOND = 10
# About this many batches per epoch are kept for the live curves.
CURVE_POINTS_PER_EPOCH = 40

LabelledImages = tuple[np.ndarray, np.ndarray]
STOP = "stop"
SNAPSHOT = "snapshot"


@dataclass(frozen=True, eq=False)
class JobSpec:
    """One training job: its id, the networks it trains (one, or a pack), and any extra labelled images.

    `packed` trains them with the pack engine (`mnistlab.packing`), also when there is one: a dense network then gets
    the very same result, bit for bit, whether classmates' networks trained with it or not."""

    job_id: int
    networks: tuple[TrainingSettings, ...]
    extra_train: LabelledImages | None = None
    extra_tests: dict[str, LabelledImages] = field(default_factory=dict)
    precision: str = FLOAT32
    packed: bool = False
    own_data: Dataset | None = None  # a set of the class's own, sent with the job (never loaded by name)

    @property
    def settings(self) -> TrainingSettings:
        return self.networks[0]


@dataclass(frozen=True)
class WorkerStarted:
    """Where the job is running, in words: "process 4242 on lab-pc-07"."""

    where: str


@dataclass(frozen=True)
class PhaseChanged:
    phase: str
    network: int | None = None  # None: every network of the job


@dataclass(frozen=True)
class PlanReady:
    plan: dict
    network: int = 0


@dataclass(frozen=True)
class BatchDone:
    progress: BatchProgress
    network: int = 0


@dataclass(frozen=True)
class EpochDone:
    record: EpochRecord
    network: int = 0


@dataclass(frozen=True)
class Stopped:
    """A Stop was honoured after this batch; the network is being scored."""

    point: StopPoint
    network: int = 0


@dataclass(frozen=True, eq=False)
class NetworkDone:
    """A network's model: at its end (`final`), or as it is now while training goes on (a snapshot)."""

    result: TrainingResult
    model_bytes: bytes
    probabilities: np.ndarray  # test-set probabilities, (N, 10) float32
    labels: np.ndarray  # test-set labels
    test_images: np.ndarray | None  # only when the run tested on a subset of the test set
    network: int = 0
    final: bool = True


@dataclass(frozen=True)
class NetworkFailed:
    reason: str
    network: int = 0


@dataclass(frozen=True)
class JobFailed:
    """Nothing of the job can go on (its process died, its data cannot be loaded)."""

    reason: str


@dataclass(frozen=True)
class JobEnded:
    """The job is over; its place is free."""


JobEvent = WorkerStarted | PhaseChanged | PlanReady | BatchDone | EpochDone | Stopped | NetworkDone | NetworkFailed | JobFailed | JobEnded
TERMINAL_EVENTS = (JobEnded, JobFailed)


class JobControls:
    """Stop and snapshot requests for the networks of the running job (set from another thread)."""

    def __init__(self, networks: int = 1):
        self._lock = threading.Lock()
        self.stops = [threading.Event() for _ in range(networks)]
        self._snapshots = [False] * networks

    def request(self, network: int, action: str) -> None:
        if not 0 <= network < len(self.stops):
            return
        if action == STOP:
            self.stops[network].set()
        elif action == SNAPSHOT:
            with self._lock:
                self._snapshots[network] = True

    def snapshot_due(self, network: int) -> Callable[[], bool]:
        """A check that is True once after each snapshot request for `network`."""

        def due() -> bool:
            with self._lock:
                wanted, self._snapshots[network] = self._snapshots[network], False
            return wanted

        return due


def describe_plan(plan: TrainingPlan) -> dict:
    """The plan as plain values (no model): what the page shows about a starting run."""
    return {
        "train_images": plan.train_images,
        "validation_images": plan.validation_images,
        "test_images": plan.test_images,
        "batches_per_epoch": plan.batches_per_epoch,
        "parameters": plan.parameters,
        "data_source": plan.data_source,
        "batch_size": plan.recipe.batch_size,
        "learning_rate": plan.recipe.learning_rate,
        "max_epochs": plan.recipe.max_epochs,
    }


class EventForwarder(TrainingListener):
    """Turns the engine's listener calls for one network into events, with batches thinned to a few a second."""

    def __init__(self, emit: Callable[[object], None], network: int = 0, test_images=None):
        self.emit = emit
        self.network = network
        self.test_images = test_images
        self._last_batch_sent = 0.0

    def on_phase(self, phase: str) -> None:
        self.emit(PhaseChanged(phase, self.network))

    def on_train_start(self, plan: TrainingPlan) -> None:
        self.emit(PlanReady(describe_plan(plan), self.network))

    def on_batch_end(self, progress: BatchProgress) -> None:
        now = time.monotonic()
        if on_curve(progress) or now - self._last_batch_sent >= 1.0 / BATCH_EVENTS_PER_SECOND:
            self._last_batch_sent = now
            self.emit(BatchDone(progress, self.network))

    def on_epoch_end(self, record: EpochRecord) -> None:
        self.emit(EpochDone(record, self.network))

    def on_stop(self, point: StopPoint) -> None:
        self.emit(Stopped(point, self.network))

    def on_snapshot(self, trained) -> None:
        self.emit(network_done(trained, self.network, self.test_images, final=False))


def on_curve(progress: BatchProgress) -> bool:
    """Whether a batch is one of the ~40 points per epoch kept for the curves."""
    stride = max(1, progress.batches_per_epoch // CURVE_POINTS_PER_EPOCH)
    return progress.batch % stride == 0 or progress.batch == progress.batches_per_epoch


def network_done(trained, network: int, test_images, final: bool = True) -> NetworkDone:
    """A trained network as an event: its result, its .keras file and its test-set predictions."""
    from mnistlab.store import model_to_bytes

    evaluation = trained.evaluation
    return NetworkDone(
        trained.result,
        model_to_bytes(trained.model),
        evaluation.probabilities.astype(np.float32),
        evaluation.labels.astype(np.uint8),
        test_images,
        network,
        final,
    )


@lru_cache(maxsize=4)
def _dataset(name: str, data_dir: str | None):
    """Datasets stay loaded in a worker between jobs."""
    from mnistlab.datasets import load_dataset

    return load_dataset(name, data_dir=data_dir)


def where_am_i() -> str:
    return f"process {os.getpid()} on {socket.gethostname()}"


def _reason(error: BaseException) -> str:
    if isinstance(error, ValueError):
        return str(error)
    if isinstance(error, MemoryError):
        return "The training ran out of memory; try a smaller network, a smaller batch or fewer images."
    return f"{type(error).__name__}: {error}".splitlines()[0]


def run_job(spec: JobSpec, emit: Callable[[JobEvent], None], controls: JobControls) -> None:
    """Train one job and emit its events; never raises (a failure is an event)."""
    finished: set[int] = set()
    try:
        emit(WorkerStarted(where_am_i()))
        emit(PhaseChanged("loading data"))
        settings = spec.settings
        dataset = spec.own_data if spec.own_data is not None else _dataset(settings.dataset, settings.data_dir)
        subset = settings.test_size is not None and settings.test_size < len(dataset.y_test)
        test_images = dataset.subset(settings.train_size, settings.test_size, seed=settings.seed).x_test if subset else None
        if not spec.packed:
            from mnistlab.training import train

            trained = train(
                settings,
                dataset=dataset,
                listeners=[EventForwarder(emit, 0, test_images)],
                cancel=controls.stops[0],
                extra_train=spec.extra_train,
                extra_tests=spec.extra_tests,
                snapshot=controls.snapshot_due(0),
                precision=spec.precision,
            )
            emit(PhaseChanged("saving", 0))
            emit(network_done(trained, 0, test_images))
            finished.add(0)
        else:
            from mnistlab.packing import train_pack

            def done(network: int, trained) -> None:
                emit(PhaseChanged("saving", network))
                emit(network_done(trained, network, test_images))
                finished.add(network)

            train_pack(
                spec.networks,
                dataset,
                listeners=[[EventForwarder(emit, number, test_images)] for number in range(len(spec.networks))],
                cancels=controls.stops,
                snapshots=[controls.snapshot_due(number) for number in range(len(spec.networks))],
                extra_train=spec.extra_train,
                extra_tests=spec.extra_tests,
                on_done=done,
            )
        emit(JobEnded())
    except Exception as error:  # noqa: BLE001 (a worker must report every failure, not die with it)
        if not isinstance(error, (ValueError, MemoryError)):
            traceback.print_exc(file=sys.stderr)
        reason = _reason(error)
        for network in range(len(spec.networks)):
            if network not in finished:
                emit(NetworkFailed(reason, network))
        emit(JobEnded())
    finally:
        try:
            import keras

            # The worker is alone with Keras here, so this is safe and frees the finished models' memory.
            keras.backend.clear_session()
        except Exception:  # noqa: BLE001, S110 (cleaning up must not hide the job's own outcome)
            pass
