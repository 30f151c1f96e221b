"""The training engine: the one place where models are trained.

`train(settings, listeners=..., cancel=...)` loads the data, builds and compiles the
model, and runs `model.fit` with validation data and callbacks. Progress is reported
to listeners (start, every batch, every epoch, end), so the web page, the command
line and the tests all drive the same code. Training stops as soon as the chosen
accuracy reaches the target (checked at the end of each epoch and, optionally, every
N batches), when the maximum number of epochs is done, or when another thread sets
the `cancel` event (honoured after the current batch; the model keeps its weights).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from mnistlab.datasets import NORMALIZATIONS, Dataset, get_info, load_dataset, normalize_images
from mnistlab.evaluation import SCORING_BATCH_SIZE
from mnistlab.models import ModelConfig, Recipe, build_model, get_preset

MONITORS = {
    "accuracy": "training accuracy",
    "val_accuracy": "validation accuracy",
}
STOP_TARGET = "target reached"
STOP_MAX_EPOCHS = "max epochs"
STOP_CANCELLED = "cancelled"


@dataclass(frozen=True)
class TrainingSettings:
    """What to train and how. Unset numbers (None) take the preset's recipe."""

    dataset: str = "mnist"
    arch: str = "dense"  # a preset name, or "custom" with model_config
    model_config: ModelConfig | None = None
    target_accuracy: float | None = 0.99
    monitor: str = "val_accuracy"
    check_every_batches: int = 0  # 0: check the target only at the end of each epoch
    max_epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    validation_split: float = 0.1
    normalization: str = "divide_255"
    seed: int = 42
    train_size: int | None = None  # train on a balanced subset (quick runs, tests)
    test_size: int | None = None
    data_dir: str | None = None

    def __post_init__(self) -> None:
        get_info(self.dataset)
        if self.arch == "custom":
            if self.model_config is None:
                raise ValueError("A custom architecture needs a model configuration.")
        else:
            get_preset(self.arch)
        if self.target_accuracy is not None and not 0.0 < self.target_accuracy <= 1.0:
            raise ValueError(
                f"The target accuracy must be above 0 and at most 1 (0.99 means 99%), got {self.target_accuracy}."
            )
        if self.monitor not in MONITORS:
            raise ValueError(f"The watched accuracy must be 'accuracy' or 'val_accuracy', got {self.monitor!r}.")
        if self.max_epochs is not None and self.max_epochs < 1:
            raise ValueError(f"Train for at least 1 epoch, got {self.max_epochs}.")
        if self.max_epochs is not None and self.max_epochs > 1000:
            raise ValueError(f"At most 1000 epochs, got {self.max_epochs}.")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"The batch size must be at least 1, got {self.batch_size}.")
        if self.learning_rate is not None and not 0.0 < self.learning_rate <= 1.0:
            raise ValueError(f"The learning rate must be above 0 and at most 1, got {self.learning_rate}.")
        if not 0.0 <= self.validation_split < 0.9:
            raise ValueError(f"The validation split is a fraction from 0 to 0.9, got {self.validation_split}.")
        if self.monitor == "val_accuracy" and self.validation_split == 0.0:
            raise ValueError("Watching validation accuracy needs some validation data: set a validation split above 0.")
        if self.check_every_batches < 0:
            raise ValueError(f"Check every N batches needs N >= 0 (0 means at epoch end), got {self.check_every_batches}.")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"Unknown normalisation {self.normalization!r}. Choose one of: {', '.join(NORMALIZATIONS)}.")
        for name in ("train_size", "test_size"):
            value = getattr(self, name)
            if value is not None and value < 10:
                raise ValueError(f"{name.replace('_', ' ')} must be at least 10 images, got {value}.")

    @property
    def base_recipe(self) -> Recipe:
        return Recipe(batch_size=128) if self.arch == "custom" else get_preset(self.arch).recipe

    def recipe_for(self, train_images: int) -> Recipe:
        """The preset's recipe for a training set of this size, with this run's overrides applied."""
        base = self.base_recipe.for_size(train_images)
        return replace(
            base,
            batch_size=self.batch_size or base.batch_size,
            learning_rate=self.learning_rate or base.learning_rate,
            max_epochs=self.max_epochs or base.max_epochs,
            small_data=None,
        )

    @property
    def config(self) -> ModelConfig:
        if self.arch == "custom":
            return self.model_config  # type: ignore[return-value]
        return get_preset(self.arch).config_for(self.dataset)


@dataclass(frozen=True)
class TrainingPlan:
    """Sent to listeners when training starts."""

    settings: TrainingSettings
    recipe: Recipe
    train_images: int
    validation_images: int
    test_images: int
    batches_per_epoch: int
    parameters: int
    data_source: str
    # The model being trained, for listeners that look at it between epochs.
    model: object = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class BatchProgress:
    """Sent after each batch: running loss and accuracy of the current epoch."""

    epoch: int
    batch: int
    batches_per_epoch: int
    max_epochs: int
    loss: float
    accuracy: float
    seconds: float

    @property
    def fraction_done(self) -> float:
        return ((self.epoch - 1) * self.batches_per_epoch + self.batch) / (self.max_epochs * self.batches_per_epoch)


@dataclass(frozen=True)
class EpochRecord:
    """One finished epoch."""

    epoch: int
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float  # since training started


@dataclass(frozen=True)
class TargetReached:
    """Where the watched accuracy first reached the target."""

    epoch: int
    batch: int
    seconds: float
    value: float


@dataclass(frozen=True)
class TrainingResult:
    """The summary of a finished run (also what the command line prints with --json)."""

    dataset: str
    arch: str
    epochs_run: int
    stop_reason: str
    target_accuracy: float | None
    monitor: str
    target_reached: TargetReached | None
    train_accuracy: float | None
    train_loss: float | None
    val_accuracy: float | None
    val_loss: float | None
    test_accuracy: float | None
    test_loss: float | None
    seconds: float
    parameters: int
    data_source: str
    normalization: str
    history: tuple[EpochRecord, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe_stop(self) -> str:
        """A sentence for a student: why and where training stopped."""
        if self.target_reached is not None:
            reached = self.target_reached
            return (
                f"Reached {reached.value:.1%} {MONITORS[self.monitor]} at epoch {reached.epoch}, "
                f"batch {reached.batch}, after {reached.seconds:.0f} s"
            )
        if self.stop_reason == STOP_CANCELLED:
            return f"Stopped by you after {self.epochs_run} epoch(s), {self.seconds:.0f} s; the model keeps what it learned."
        target = f" without reaching {self.target_accuracy:.1%}" if self.target_accuracy else ""
        return f"Trained for the maximum of {self.epochs_run} epoch(s){target}, in {self.seconds:.0f} s."


class TrainingListener:
    """Override the methods you need; each one is called from the training thread."""

    def on_train_start(self, plan: TrainingPlan) -> None:
        pass

    def on_batch_end(self, progress: BatchProgress) -> None:
        pass

    def on_epoch_end(self, record: EpochRecord) -> None:
        pass

    def on_train_end(self, result: TrainingResult) -> None:
        pass

    def on_phase(self, phase: str) -> None:
        """A change of phase: "loading data", "building model", "training", "evaluating"."""


@dataclass
class TrainedModel:
    """A trained Keras model together with what is needed to use it."""

    model: object
    result: TrainingResult
    settings: TrainingSettings
    class_names: tuple[str, ...]

    @property
    def normalization(self) -> str:
        return self.settings.normalization


@dataclass(frozen=True)
class PreparedData:
    """The training images (uint8, normalised batch by batch), and normalised validation and test sets."""

    train_pixels: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    normalization: str = "divide_255"

    def training_batches(self, batch_size: int, seed: int = 0):
        """Shuffled, normalised training batches for `model.fit` (a new order each epoch)."""
        from mnistlab.batches import ShuffledBatches

        return ShuffledBatches(self.train_pixels, self.y_train, batch_size, self.normalization, seed)


def prepare_data(dataset: Dataset, settings: TrainingSettings) -> PreparedData:
    """Hold out a shuffled (seeded) validation split of the training set, and normalise it and the test set.

    The training images stay uint8; `PreparedData.training_batches` normalises them a batch at a time.
    """
    if settings.train_size or settings.test_size:
        dataset = dataset.subset(settings.train_size, settings.test_size, seed=settings.seed)
    x_test = normalize_images(dataset.x_test, settings.normalization)
    y_train, y_test = dataset.y_train, dataset.y_test
    validation_count = int(round(len(y_train) * settings.validation_split))
    if validation_count == 0:
        return PreparedData(dataset.x_train, y_train, None, None, x_test, y_test, settings.normalization)
    order = np.random.default_rng(settings.seed).permutation(len(y_train))
    validation, training = order[:validation_count], order[validation_count:]
    return PreparedData(
        dataset.x_train[training],
        y_train[training],
        normalize_images(dataset.x_train[validation], settings.normalization),
        y_train[validation],
        x_test,
        y_test,
        settings.normalization,
    )


def make_optimizer(recipe: Recipe, steps_total: int):
    """Adam or AdamW, with a constant or a one-cycle (warm-up, then cosine decay) learning rate."""
    import keras

    learning_rate = recipe.learning_rate
    if recipe.schedule == "one_cycle":
        warmup = max(1, int(0.25 * steps_total))
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=recipe.learning_rate / 20,
            decay_steps=max(1, steps_total - warmup),
            alpha=0.01,
            warmup_target=recipe.learning_rate,
            warmup_steps=warmup,
        )
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=1e-4)
    return keras.optimizers.Adam(learning_rate=learning_rate)


def compile_model(model, recipe: Recipe, steps_total: int) -> None:
    model.compile(
        optimizer=make_optimizer(recipe, steps_total),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=recipe.steps_per_execution,
    )


def batched_accuracy(model, images: np.ndarray, labels: np.ndarray, batch_size: int = SCORING_BATCH_SIZE) -> float:
    """Accuracy of a forward pass in inference mode, without touching the compiled metrics."""
    correct = 0
    for start in range(0, len(labels), batch_size):
        probabilities = np.asarray(model(images[start : start + batch_size], training=False))
        correct += int((probabilities.argmax(axis=1) == labels[start : start + batch_size]).sum())
    return correct / max(1, len(labels))


class _EngineCallback:
    """Builds the Keras callback that reports progress, checks the target and honours cancel."""

    @staticmethod
    def create(engine: "_Engine"):
        import keras

        class EngineCallback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                engine.epoch = epoch + 1
                engine.last_checked_batch = 0

            def on_train_batch_end(self, batch, logs=None):
                engine.after_batch(self.model, batch + 1, logs or {})

            def on_epoch_end(self, epoch, logs=None):
                engine.after_epoch(self.model, epoch + 1, logs or {})

        return EngineCallback()


class _Engine:
    """The mutable state of one run, shared by the Keras callback."""

    def __init__(self, settings, recipe, data, batches_per_epoch, listeners, cancel):
        self.settings = settings
        self.recipe = recipe
        self.data = data
        self.batches_per_epoch = batches_per_epoch
        self.listeners = listeners
        self.cancel = cancel
        self.start = time.perf_counter()
        self.epoch = 1
        self.history: list[EpochRecord] = []
        self.target_reached: TargetReached | None = None
        self.cancelled = False
        self.last_checked_batch = 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def _reach(self, model, epoch: int, batch: int, value: float) -> None:
        if self.target_reached is None:
            self.target_reached = TargetReached(epoch, batch, round(self.elapsed(), 3), float(value))
        model.stop_training = True

    def after_batch(self, model, batch: int, logs: dict) -> None:
        # With steps_per_execution > 1 Keras reports once per execution, and the last
        # report of an epoch can count past the end of the data.
        batch = min(batch, self.batches_per_epoch)
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
        if self.cancel is not None and self.cancel.is_set():
            self.cancelled = True
            model.stop_training = True
            return
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
            value = batched_accuracy(model, self.data.x_val, self.data.y_val)
        if value >= target:
            self._reach(model, self.epoch, batch, value)

    def after_epoch(self, model, epoch: int, logs: dict) -> None:
        def number(key):
            return float(logs[key]) if key in logs else None

        record = EpochRecord(
            epoch=epoch,
            loss=float(logs.get("loss", float("nan"))),
            accuracy=float(logs.get("accuracy", float("nan"))),
            val_loss=number("val_loss"),
            val_accuracy=number("val_accuracy"),
            seconds=round(self.elapsed(), 3),
        )
        self.history.append(record)
        for listener in self.listeners:
            listener.on_epoch_end(record)
        target = self.settings.target_accuracy
        if self.cancelled or target is None or self.target_reached is not None:
            return
        value = record.accuracy if self.settings.monitor == "accuracy" else record.val_accuracy
        # A cancel that arrived in the last batch of an epoch still counts as a cancel.
        if value is not None and value >= target and not (self.cancel is not None and self.cancel.is_set()):
            self._reach(model, epoch, self.batches_per_epoch, value)


def _notify_phase(listeners, phase: str) -> None:
    for listener in listeners:
        listener.on_phase(phase)


def train(
    settings: TrainingSettings,
    dataset: Dataset | None = None,
    listeners: tuple[TrainingListener, ...] | list[TrainingListener] = (),
    cancel: threading.Event | None = None,
) -> TrainedModel:
    """Train a model as `settings` say and return it with its result."""
    import keras

    listeners = list(listeners)
    _notify_phase(listeners, "loading data")
    if dataset is None:
        dataset = load_dataset(settings.dataset, data_dir=settings.data_dir)
    elif dataset.name != settings.dataset:
        raise ValueError(f"The settings ask for {settings.dataset!r} but the dataset given is {dataset.name!r}.")
    data = prepare_data(dataset, settings)
    recipe = settings.recipe_for(len(data.y_train))

    _notify_phase(listeners, "building model")
    keras.utils.set_random_seed(settings.seed)
    model = build_model(settings.config, name=f"{settings.dataset}_{settings.arch}")
    batches_per_epoch = -(-len(data.y_train) // recipe.batch_size)
    compile_model(model, recipe, steps_total=batches_per_epoch * recipe.max_epochs)
    plan = TrainingPlan(
        settings=settings,
        recipe=recipe,
        train_images=len(data.y_train),
        validation_images=0 if data.y_val is None else len(data.y_val),
        test_images=len(data.y_test),
        batches_per_epoch=batches_per_epoch,
        parameters=model.count_params(),
        data_source=dataset.source.describe(),
        model=model,
    )
    for listener in listeners:
        listener.on_train_start(plan)

    _notify_phase(listeners, "training")
    engine = _Engine(settings, recipe, data, batches_per_epoch, listeners, cancel)
    validation = (data.x_val, data.y_val) if data.y_val is not None else None
    model.fit(
        data.training_batches(recipe.batch_size, seed=settings.seed),
        epochs=recipe.max_epochs,
        validation_data=validation,
        callbacks=[_EngineCallback.create(engine)],
        # The batches come shuffled, in a seeded order; Keras need not shuffle them again.
        shuffle=False,
        verbose=0,
    )
    training_seconds = engine.elapsed()

    _notify_phase(listeners, "evaluating")
    test_loss, test_accuracy = model.evaluate(data.x_test, data.y_test, batch_size=SCORING_BATCH_SIZE, verbose=0)
    last = engine.history[-1] if engine.history else None
    if engine.target_reached is not None:
        stop_reason = STOP_TARGET
    elif engine.cancelled:
        stop_reason = STOP_CANCELLED
    else:
        stop_reason = STOP_MAX_EPOCHS
    result = TrainingResult(
        dataset=settings.dataset,
        arch=settings.arch,
        epochs_run=len(engine.history),
        stop_reason=stop_reason,
        target_accuracy=settings.target_accuracy,
        monitor=settings.monitor,
        target_reached=engine.target_reached,
        train_accuracy=last.accuracy if last else None,
        train_loss=last.loss if last else None,
        val_accuracy=last.val_accuracy if last else None,
        val_loss=last.val_loss if last else None,
        test_accuracy=float(test_accuracy),
        test_loss=float(test_loss),
        seconds=round(training_seconds, 3),
        parameters=int(model.count_params()),
        data_source=dataset.source.describe(),
        normalization=settings.normalization,
        history=tuple(engine.history),
    )
    for listener in listeners:
        listener.on_train_end(result)
    return TrainedModel(model=model, result=result, settings=settings, class_names=dataset.class_names)
