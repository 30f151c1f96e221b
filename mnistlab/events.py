"""What the training engine tells its listeners: the plan, each batch, each epoch, the result.

Every event is a frozen dataclass of plain values, so it can be shown by a page,
printed by the command line, sent from a worker process to the web server, and
stored in the runs database. `TrainingListener` is the interface listeners implement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from mnistlab.i18n import N_, _, ngettext, number, percent, seconds
from mnistlab.models import Recipe
from mnistlab.settings import MONITORS, TrainingSettings

STOP_TARGET = "target reached"
STOP_MAX_EPOCHS = "max epochs"
STOP_CANCELLED = "cancelled"

PHASES = (N_("loading data"), N_("building model"), N_("training"), N_("evaluating"), N_("saving"))


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
    # The model being trained, for listeners in the same process that look at it between
    # epochs; it is left out (None) when the plan travels to another process.
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
    """One finished epoch. `seconds` counts from the start of training; `epoch_seconds` is this epoch alone."""

    epoch: int
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float
    epoch_seconds: float | None = None


@dataclass(frozen=True)
class TargetReached:
    """Where the watched accuracy first reached the target."""

    epoch: int
    batch: int
    seconds: float
    value: float


@dataclass(frozen=True)
class StopPoint:
    """The last batch that was trained: where a run stopped."""

    epoch: int
    batch: int
    batches_per_epoch: int
    max_epochs: int

    @property
    def fraction_done(self) -> float:
        return ((self.epoch - 1) * self.batches_per_epoch + self.batch) / (self.max_epochs * self.batches_per_epoch)


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
    stopped_at: StopPoint | None = None
    # Accuracy on further test sets, such as a class's own drawings: {name: accuracy}.
    extra_test_accuracy: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainingResult:
        """The result `to_dict` wrote (the runs database keeps results this way)."""
        values = dict(values)
        values["history"] = tuple(EpochRecord(**record) for record in values.get("history") or ())
        if values.get("target_reached"):
            values["target_reached"] = TargetReached(**values["target_reached"])
        if values.get("stopped_at"):
            values["stopped_at"] = StopPoint(**values["stopped_at"])
        values["extra_test_accuracy"] = dict(values.get("extra_test_accuracy") or {})
        return cls(**values)

    def describe_stop(self) -> str:
        """A sentence for a student: why and where training stopped."""
        if self.target_reached is not None:
            reached = self.target_reached
            return _("Reached {value} {watched} at epoch {epoch}, batch {batch}, after {seconds:.0f} s").format(
                value=percent(reached.value),
                watched=_(MONITORS[self.monitor]),
                epoch=reached.epoch,
                batch=number(reached.batch),
                seconds=reached.seconds,
            )
        if self.stop_reason == STOP_CANCELLED:
            where = self.stopped_at
            if where is None or where.batch == 0:
                return _("Stopped by you before the first batch; the model has not learned anything yet")
            return _("Stopped by you at batch {batch} of {batches} in epoch {epoch}, after {seconds:.0f} s; the model keeps what it learned").format(
                batch=number(where.batch), batches=number(where.batches_per_epoch), epoch=where.epoch, seconds=self.seconds
            )
        if self.target_accuracy:
            return ngettext(
                "Trained for the maximum of {epochs} epoch without reaching {target}, in {seconds}",
                "Trained for the maximum of {epochs} epochs without reaching {target}, in {seconds}",
                self.epochs_run,
            ).format(epochs=self.epochs_run, target=percent(self.target_accuracy), seconds=seconds(self.seconds))
        return ngettext(
            "Trained for the maximum of {epochs} epoch, in {seconds}", "Trained for the maximum of {epochs} epochs, in {seconds}", self.epochs_run
        ).format(epochs=self.epochs_run, seconds=seconds(self.seconds))


class TrainingListener:
    """Override the methods you need; each one is called from the thread that trains."""

    def on_phase(self, phase: str) -> None:
        """A change of phase: one of PHASES."""

    def on_train_start(self, plan: TrainingPlan) -> None:
        pass

    def on_batch_end(self, progress: BatchProgress) -> None:
        pass

    def on_epoch_end(self, record: EpochRecord) -> None:
        pass

    def on_stop(self, point: StopPoint) -> None:
        """Training stopped because it was asked to (Stop), after the batch at `point`; scoring follows."""

    def on_snapshot(self, trained) -> None:
        """The model as it is now, scored (a `mnistlab.training.TrainedModel`), while training goes on."""

    def on_train_end(self, result: TrainingResult) -> None:
        pass
