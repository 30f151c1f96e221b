"""What a training worker does with one job, wherever it runs (a local process or a Ray node).

A `JobSpec` says which run to train and how. `run_job` trains it through the training
engine and reports `JobEvent`s through an `emit` function as it goes: phase changes,
the plan, batches (at most `BATCH_EVENTS_PER_SECOND` a second, and always the last
of an epoch), epochs, then exactly one `JobSucceeded` (with the model as .keras bytes
and the test-set predictions) or `JobFailed` (with a one-line reason). Setting the
`cancel` event stops training after the current batch; the model trained so far is
still returned. Events are plain frozen dataclasses, so they cross process and
machine boundaries by pickling.
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

from mnistlab.events import BatchProgress, EpochRecord, TrainingListener, TrainingPlan, TrainingResult
from mnistlab.settings import TrainingSettings

BATCH_EVENTS_PER_SECOND = 10
# About this many batches per epoch are kept for the live curves.
CURVE_POINTS_PER_EPOCH = 40

LabelledImages = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True, eq=False)
class JobSpec:
    """One training job: the run it belongs to, its settings, and any extra labelled images."""

    run_id: int
    settings: TrainingSettings
    extra_train: LabelledImages | None = None
    extra_tests: dict[str, LabelledImages] = field(default_factory=dict)


@dataclass(frozen=True)
class PhaseChanged:
    phase: str


@dataclass(frozen=True)
class PlanReady:
    plan: dict


@dataclass(frozen=True)
class BatchDone:
    progress: BatchProgress


@dataclass(frozen=True)
class EpochDone:
    record: EpochRecord


@dataclass(frozen=True)
class WorkerStarted:
    """Where the job is running, in words: "process 4242 on lab-pc-07"."""

    where: str


@dataclass(frozen=True, eq=False)
class JobSucceeded:
    """Training ended (target, epochs or Stop) and the model is here."""

    result: TrainingResult
    model_bytes: bytes
    probabilities: np.ndarray  # test-set probabilities, (N, 10) float32
    labels: np.ndarray  # test-set labels
    test_images: np.ndarray | None  # only when the run tested on a subset of the test set


@dataclass(frozen=True)
class JobFailed:
    reason: str


JobEvent = PhaseChanged | PlanReady | BatchDone | EpochDone | WorkerStarted | JobSucceeded | JobFailed
TERMINAL_EVENTS = (JobSucceeded, JobFailed)


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
    """Turns the engine's listener calls into events, with batches thinned to a few a second."""

    def __init__(self, emit: Callable[[JobEvent], None]):
        self.emit = emit
        self._last_batch_sent = 0.0

    def on_phase(self, phase: str) -> None:
        self.emit(PhaseChanged(phase))

    def on_train_start(self, plan: TrainingPlan) -> None:
        self.emit(PlanReady(describe_plan(plan)))

    def on_batch_end(self, progress: BatchProgress) -> None:
        now = time.monotonic()
        if on_curve(progress) or now - self._last_batch_sent >= 1.0 / BATCH_EVENTS_PER_SECOND:
            self._last_batch_sent = now
            self.emit(BatchDone(progress))

    def on_epoch_end(self, record: EpochRecord) -> None:
        self.emit(EpochDone(record))


def on_curve(progress: BatchProgress) -> bool:
    """Whether a batch is one of the ~40 points per epoch kept for the curves."""
    stride = max(1, progress.batches_per_epoch // CURVE_POINTS_PER_EPOCH)
    return progress.batch % stride == 0 or progress.batch == progress.batches_per_epoch


@lru_cache(maxsize=4)
def _dataset(name: str, data_dir: str | None):
    """Datasets stay loaded in a worker between jobs."""
    from mnistlab.datasets import load_dataset

    return load_dataset(name, data_dir=data_dir)


def where_am_i() -> str:
    return f"process {os.getpid()} on {socket.gethostname()}"


def run_job(spec: JobSpec, emit: Callable[[JobEvent], None], cancel: threading.Event) -> None:
    """Train one job and emit its events; never raises (a failure is a JobFailed event)."""
    try:
        from mnistlab.store import model_to_bytes
        from mnistlab.training import train

        emit(WorkerStarted(where_am_i()))
        emit(PhaseChanged("loading data"))
        settings = spec.settings
        dataset = _dataset(settings.dataset, settings.data_dir)
        trained = train(
            settings, dataset=dataset, listeners=[EventForwarder(emit)], cancel=cancel, extra_train=spec.extra_train, extra_tests=spec.extra_tests
        )
        emit(PhaseChanged("saving"))
        evaluation = trained.evaluation
        subset = settings.test_size is not None and settings.test_size < len(dataset.y_test)
        test_images = dataset.subset(settings.train_size, settings.test_size, seed=settings.seed).x_test if subset else None
        emit(
            JobSucceeded(
                trained.result,
                model_to_bytes(trained.model),
                evaluation.probabilities.astype(np.float32),
                evaluation.labels.astype(np.uint8),
                test_images,
            )
        )
    except ValueError as error:
        emit(JobFailed(str(error)))
    except MemoryError:
        emit(JobFailed("The training ran out of memory; try a smaller network, a smaller batch or fewer images."))
    except Exception as error:  # noqa: BLE001 (a worker must report every failure, not die with it)
        traceback.print_exc(file=sys.stderr)
        emit(JobFailed(f"{type(error).__name__}: {error}".splitlines()[0]))
    finally:
        try:
            import keras

            # The worker is alone with Keras here, so this is safe and frees the finished model's memory.
            keras.backend.clear_session()
        except Exception:  # noqa: BLE001, S110 (cleaning up must not hide the job's own outcome)
            pass
