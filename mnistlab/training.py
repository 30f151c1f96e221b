"""The training engine: the one place where models are trained.

`train(settings, listeners=..., cancel=...)` loads the data, builds and compiles the
model, and runs `model.fit` with validation data and a callback. Progress is reported
to listeners (phase, start, every batch, every epoch, end), so the web app's workers,
the command line, the benchmark and the tests all drive the same code. Training stops
as soon as the watched accuracy reaches the target (checked at the end of each epoch
and, optionally, every N batches), when the maximum number of epochs is done, or when
another thread sets the `cancel` event (honoured after the current batch; the model
keeps its weights). The test set is scored once, after training.

The parts are public so that `mnistlab.packing` trains several networks in one pass
with the very same preparation, engine and scoring: `prepare`, `build`,
`TrainingEngine` and `score`. A `snapshot` check lets a worker hand out the model as
it is now (a classmate who stops watching a shared training) while training goes on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from mnistlab.datasets import Dataset, load_dataset, normalize_images
from mnistlab.evaluation import Evaluation, accuracy, evaluation_from_probabilities, forward
from mnistlab.events import (
    STOP_CANCELLED,
    STOP_MAX_EPOCHS,
    STOP_TARGET,
    BatchProgress,
    EpochRecord,
    StopPoint,
    TargetReached,
    TrainingListener,
    TrainingPlan,
    TrainingResult,
)
from mnistlab.models import Recipe, build_model
from mnistlab.optimizers import compile_model
from mnistlab.precision import FLOAT32, precision_policy
from mnistlab.preparation import PreparedData, prepare_data
from mnistlab.settings import TrainingSettings
from mnistlab.sizing import Speed, training_flops_per_image

# Labelled uint8 images: (images of shape (N, 28, 28), labels of shape (N,)).
LabelledImages = tuple[np.ndarray, np.ndarray]
# Keras runs several batches per call between two callbacks; they are kept to about this many seconds,
# so Stop is honoured quickly even for the biggest network the server accepts.
SECONDS_PER_CALL = 0.15


@dataclass
class TrainedModel:
    """A trained Keras model together with what is needed to use it, and its test-set predictions."""

    model: object
    result: TrainingResult
    settings: TrainingSettings
    class_names: tuple[str, ...]
    evaluation: Evaluation | None = None

    @property
    def normalization(self) -> str:
        return self.settings.normalization


@dataclass(frozen=True, eq=False)
class Prepared:
    """Everything a training needs before its first batch: the data, the recipe and the number of batches."""

    settings: TrainingSettings
    dataset: Dataset
    data: PreparedData
    recipe: Recipe
    batches_per_epoch: int


def prepare(settings: TrainingSettings, dataset: Dataset | None = None, extra_train: LabelledImages | None = None) -> Prepared:
    """Load (or check) the dataset, split and normalise it, and work out the recipe for its size."""
    if dataset is None:
        dataset = load_dataset(settings.dataset, data_dir=settings.data_dir)
    elif dataset.name != settings.dataset:
        raise ValueError(f"The settings ask for {settings.dataset!r} but the dataset given is {dataset.name!r}.")
    data = prepare_data(dataset, settings, extra_train)
    recipe = settings.recipe_for(len(data.y_train))
    return Prepared(settings, dataset, data, recipe, -(-len(data.y_train) // recipe.batch_size))


def steps_per_call(settings: TrainingSettings, recipe: Recipe, speed: Speed = Speed()) -> int:
    """How many batches Keras runs per call: the recipe's, but never more than about `SECONDS_PER_CALL` of work."""
    step = recipe.batch_size * training_flops_per_image(settings.config) / speed.flops_per_second + speed.seconds_per_step
    return max(1, min(recipe.steps_per_execution, int(SECONDS_PER_CALL / step)))


def build(prepared: Prepared, precision: str = FLOAT32, compiled: bool = True):
    """The seeded model of these settings, compiled with its recipe (built under `precision`)."""
    import keras

    settings = prepared.settings
    keras.utils.set_random_seed(settings.seed)
    with precision_policy(precision):
        # One output per category: ten for the digits and the clothes, the set's own for a class's images.
        config = replace(settings.config, num_classes=len(prepared.dataset.class_names))
        model = build_model(config, name=f"{settings.dataset}_{settings.arch}")
        if compiled:
            recipe = prepared.recipe
            steps = steps_per_call(settings, recipe)
            compile_model(model, replace(recipe, steps_per_execution=steps), steps_total=prepared.batches_per_epoch * recipe.max_epochs)
    return model


def plan_of(prepared: Prepared, model) -> TrainingPlan:
    data = prepared.data
    return TrainingPlan(
        settings=prepared.settings,
        recipe=prepared.recipe,
        train_images=len(data.y_train),
        validation_images=0 if data.y_val is None else len(data.y_val),
        test_images=len(data.y_test),
        batches_per_epoch=prepared.batches_per_epoch,
        parameters=model.count_params(),
        data_source=prepared.dataset.source.describe(),
        model=model,
    )


class TrainingEngine:
    """The state of one run while Keras trains it: progress, target checks, cancelling and snapshots.

    `keras_callback()` gives the Keras callback that drives it; `mnistlab.packing` calls
    `after_batch` and `after_epoch` itself. The benchmark uses the engine directly to
    time the live-progress hooks.
    """

    def __init__(
        self,
        settings: TrainingSettings,
        recipe: Recipe,
        data: PreparedData,
        batches_per_epoch: int,
        listeners: list[TrainingListener],
        cancel: threading.Event | None,
        snapshot: Callable[[], bool] | None = None,
        on_snapshot: Callable[[object, TrainingEngine], None] | None = None,
    ):
        self.settings = settings
        self.recipe = recipe
        self.data = data
        self.batches_per_epoch = batches_per_epoch
        self.listeners = listeners
        self.cancel = cancel
        self.snapshot = snapshot
        self.on_snapshot = on_snapshot
        self.start = time.perf_counter()
        self.epoch = 1
        self.epoch_started = self.start
        self.history: list[EpochRecord] = []
        self.target_reached: TargetReached | None = None
        self.cancelled = False
        self.last_checked_batch = 0
        self.last_batch: tuple[int, int] = (1, 0)
        self.done = False

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @property
    def stopped_at(self) -> StopPoint:
        epoch, batch = self.last_batch
        return StopPoint(epoch, batch, self.batches_per_epoch, self.recipe.max_epochs)

    def keras_callback(self):
        """A Keras callback that reports to this engine."""
        import keras

        engine = self

        class EngineCallback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                engine.begin_epoch(epoch + 1)

            def on_train_batch_end(self, batch, logs=None):
                engine.after_batch(self.model, batch + 1, logs or {})

            def on_epoch_end(self, epoch, logs=None):
                engine.after_epoch(self.model, epoch + 1, logs or {})

        return EngineCallback()

    def begin_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.epoch_started = time.perf_counter()
        self.last_checked_batch = 0

    def _cancel_requested(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def _stop(self, model) -> None:
        model.stop_training = True
        self.done = True

    def _reach(self, model, epoch: int, batch: int, value: float) -> None:
        if self.target_reached is None:
            self.target_reached = TargetReached(epoch, batch, round(self.elapsed(), 3), float(value))
        self._stop(model)

    def after_batch(self, model, batch: int, logs: dict) -> None:
        # With steps_per_execution > 1 Keras reports once per execution, and the last
        # report of an epoch can count past the end of the data.
        batch = min(batch, self.batches_per_epoch)
        self.last_batch = (self.epoch, batch)
        progress = BatchProgress(
            epoch=self.epoch,
            batch=batch,
            batches_per_epoch=self.batches_per_epoch,
            max_epochs=self.recipe.max_epochs,
            loss=float(logs.get("loss", float("nan"))),
            accuracy=float(logs.get("accuracy", float("nan"))),
            seconds=self.elapsed(),
        )
        for listener in self.listeners:
            listener.on_batch_end(progress)
        if self._cancel_requested():
            self.cancelled = True
            self._stop(model)
            for listener in self.listeners:
                listener.on_stop(self.stopped_at)
            return
        if self.snapshot is not None and self.on_snapshot is not None and self.snapshot():
            self.on_snapshot(model, self)
        every = self.settings.check_every_batches
        target = self.settings.target_accuracy
        if target is None or not every or batch == self.batches_per_epoch:
            return
        # Check when a multiple of N has been passed (Keras may report batches in steps).
        if batch // every == self.last_checked_batch // every:
            return
        self.last_checked_batch = batch
        if self.settings.monitor == "accuracy":
            value = progress.accuracy
        else:
            value = accuracy(model, self.data.x_val, self.data.y_val)
        if value >= target:
            self._reach(model, self.epoch, batch, value)

    def after_epoch(self, model, epoch: int, logs: dict) -> None:
        def number(key):
            return float(logs[key]) if key in logs else None

        now = time.perf_counter()
        record = EpochRecord(
            epoch=epoch,
            loss=float(logs.get("loss", float("nan"))),
            accuracy=float(logs.get("accuracy", float("nan"))),
            val_loss=number("val_loss"),
            val_accuracy=number("val_accuracy"),
            seconds=round(now - self.start, 3),
            epoch_seconds=round(now - self.epoch_started, 3),
        )
        self.history.append(record)
        for listener in self.listeners:
            listener.on_epoch_end(record)
        if epoch >= self.recipe.max_epochs:
            self.done = True
        target = self.settings.target_accuracy
        if self.cancelled or target is None or self.target_reached is not None:
            return
        value = record.accuracy if self.settings.monitor == "accuracy" else record.val_accuracy
        # A cancel that arrived in the last batch of an epoch still counts as a cancel.
        if value is not None and value >= target and not self._cancel_requested():
            self._reach(model, epoch, self.batches_per_epoch, value)

    @property
    def stop_reason(self) -> str:
        if self.target_reached is not None:
            return STOP_TARGET
        return STOP_CANCELLED if self.cancelled else STOP_MAX_EPOCHS


def notify_phase(listeners, phase: str) -> None:
    for listener in listeners:
        listener.on_phase(phase)


def score(
    prepared: Prepared,
    model,
    engine: TrainingEngine,
    training_seconds: float,
    extra_tests: dict[str, LabelledImages] | None = None,
    stop_reason: str | None = None,
) -> TrainedModel:
    """Score the model on the test set (and any extra test sets) and write its result."""
    settings, data, dataset = prepared.settings, prepared.data, prepared.dataset
    # The test set as `prepare_data` chose it (a balanced subset when test_size is set).
    evaluation = evaluation_from_probabilities(forward(model, data.x_test), data.y_test, dataset.class_names)
    extra_accuracy = {}
    for name, (images, labels) in (extra_tests or {}).items():
        if len(labels):
            extra_accuracy[name] = accuracy(model, normalize_images(images, settings.normalization), np.asarray(labels))
    last = engine.history[-1] if engine.history else None
    result = TrainingResult(
        dataset=settings.dataset,
        arch=settings.arch,
        epochs_run=len(engine.history),
        stop_reason=stop_reason or engine.stop_reason,
        target_accuracy=settings.target_accuracy,
        monitor=settings.monitor,
        target_reached=engine.target_reached,
        train_accuracy=last.accuracy if last else None,
        train_loss=last.loss if last else None,
        val_accuracy=last.val_accuracy if last else None,
        val_loss=last.val_loss if last else None,
        test_accuracy=evaluation.accuracy,
        test_loss=evaluation.loss,
        seconds=round(training_seconds, 3),
        parameters=int(model.count_params()),
        data_source=dataset.source.describe(),
        normalization=settings.normalization,
        history=tuple(engine.history),
        stopped_at=engine.stopped_at,
        extra_test_accuracy=extra_accuracy,
    )
    return TrainedModel(model=model, result=result, settings=settings, class_names=dataset.class_names, evaluation=evaluation)


def snapshot_handler(prepared: Prepared, listeners, extra_tests) -> Callable[[object, TrainingEngine], None]:
    """What a training does when asked for its model as it is now: score it and hand it to the listeners."""

    def take(model, engine: TrainingEngine) -> None:
        trained = score(prepared, model, engine, engine.elapsed(), extra_tests, stop_reason=STOP_CANCELLED)
        for listener in listeners:
            listener.on_snapshot(trained)

    return take


def train(
    settings: TrainingSettings,
    dataset: Dataset | None = None,
    listeners: tuple[TrainingListener, ...] | list[TrainingListener] = (),
    cancel: threading.Event | None = None,
    extra_train: LabelledImages | None = None,
    extra_tests: dict[str, LabelledImages] | None = None,
    snapshot: Callable[[], bool] | None = None,
    precision: str = FLOAT32,
) -> TrainedModel:
    """Train a model as `settings` say and return it with its result.

    `extra_train` adds labelled images to the training set; each of `extra_tests` is
    scored after training and reported in `result.extra_test_accuracy`. When `snapshot`
    returns True after a batch, the model as it is then is scored and given to the
    listeners' `on_snapshot`, and training goes on.
    """
    listeners = list(listeners)
    notify_phase(listeners, "loading data")
    prepared = prepare(settings, dataset, extra_train)

    notify_phase(listeners, "building model")
    model = build(prepared, precision)
    for listener in listeners:
        listener.on_train_start(plan_of(prepared, model))

    notify_phase(listeners, "training")
    data, recipe = prepared.data, prepared.recipe
    engine = TrainingEngine(
        settings, recipe, data, prepared.batches_per_epoch, listeners, cancel, snapshot, snapshot_handler(prepared, listeners, extra_tests)
    )
    validation = (data.x_val, data.y_val) if data.y_val is not None else None
    model.fit(
        data.training_batches(recipe.batch_size, seed=settings.seed),
        epochs=recipe.max_epochs,
        validation_data=validation,
        validation_batch_size=recipe.batch_size,
        callbacks=[engine.keras_callback()],
        # The batches come shuffled, in a seeded order; Keras need not shuffle them again.
        shuffle=False,
        verbose=0,
    )
    training_seconds = engine.elapsed()

    notify_phase(listeners, "evaluating")
    trained = score(prepared, model, engine, training_seconds, extra_tests)
    for listener in listeners:
        listener.on_train_end(trained.result)
    return trained
