"""The class race's rules: which runs are in it, the line each draws, who reached the target first, the leaderboard.

A teacher starts a race (`Race`: a name, a target, and the lesson step it runs, if any). It holds only the class's
runs pressed after it started. Every run draws the measure its stop watches: validation accuracy at the end of each
epoch (and, where the stop reached the target inside an epoch, the value it reached there), so a line crosses the
target exactly where that student's own result says it reached it. Classmates who share one training draw one line.
A run "reaches" the race's target at the first point of its line at or above it; the first to reach it is the one
with the shortest time from pressing Train (its wait in the queue plus its training up to that point).

Everything here is a plain function over plain values (`RunSnapshot`s and names): no database, no thread, no page.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from mnistlab.datasets import dataset_title
from mnistlab.i18n import N_, _, decimal, name_order, ngettext, number, percent
from mnistlab.models import network_text
from mnistlab.runs import CANCELLED, FINISHED, QUEUED, RUNNING, RunSnapshot
from mnistlab.settings import TrainingSettings

LEADERS = 3  # the lines labelled on the chart and drawn thick; the others are thinner
NAME_LENGTH = (1, 60)


@dataclass(frozen=True)
class Race:
    """A race the teacher started: it holds the class's runs pressed after `started_at`."""

    race_id: int
    class_id: int
    name: str
    target: float  # validation accuracy, as the lesson's stop measures it
    started_at: float
    reference: TrainingSettings | None = None  # the lesson step raced: labels say how each run differs from it


@dataclass(frozen=True)
class RacePoint:
    """One point of a line: where in training (epochs, 2.5 is half-way through the third), the validation accuracy
    there, and the seconds of training it took."""

    epoch: float
    value: float
    seconds: float


@dataclass(frozen=True)
class RaceLine:
    """One training in the race: its runs (classmates sharing it), its label and its points."""

    runs: tuple[RunSnapshot, ...]
    names: tuple[str, ...]
    label: str
    points: tuple[RacePoint, ...]


@dataclass(frozen=True)
class Standing:
    """A run's row on the leaderboard."""

    run: RunSnapshot
    label: str
    reached: RacePoint | None  # where its line first reached the race's target
    from_pressing: float | None  # seconds from pressing Train to reaching the target (wait + training)
    best: float | None  # its best validation accuracy so far
    copied_from: int | None  # it took the result of this earlier identical training, so it is not timed

    @property
    def state(self) -> str:
        """Where the run is (a key of `STATES`): reached, training, waiting, below the target, stopped, failed."""
        run = self.run
        if self.reached is not None:
            return "reached"
        if run.status == QUEUED:
            return "waiting"
        if run.status == RUNNING:
            return "training"
        if run.status == FINISHED:
            return "below"
        if run.status == CANCELLED:
            return "stopped"
        return "failed"  # failed, or cut off by a restart

    @property
    def state_text(self) -> str:
        return _(STATES[self.state])


# What the leaderboard and the progress grid say of a student's run (or of no run), translated where shown.
STATES = {
    "not_started": N_("not started"),
    "waiting": N_("waiting"),
    "training": N_("training now"),
    "reached": N_("reached"),
    "below": N_("below the target"),
    "stopped": N_("stopped"),
    "failed": N_("failed"),
    "idle": N_("nothing for {minutes} min"),
}
STUCK_AFTER = 180.0  # seconds without a training or a drawing before the grid says "nothing for N min"


@dataclass(frozen=True)
class Progress:
    """A student on the teacher's progress grid: their latest run in the race, and where they are."""

    owner: str
    nickname: str
    state: str  # a key of STATES
    standing: Standing | None  # their latest run's row, if they pressed Train since the race started
    idle_minutes: int | None = None

    @property
    def state_text(self) -> str:
        return _(STATES[self.state]).format(minutes=self.idle_minutes)


def class_progress(race: Race, table: list[Standing], names: dict[str, str], last_active: dict[str, float], now: float) -> list[Progress]:
    """Every student of the class on the race's step, in name order: not started, waiting, training, reached, below the
    target, stopped, failed; one who has not reached it and did nothing (no training, no drawing) for `STUCK_AFTER`
    seconds since the race started is "nothing for N min"."""
    latest: dict[str, Standing] = {}
    for row in table:
        if row.run.owner not in latest or row.run.run_id > latest[row.run.owner].run.run_id:
            latest[row.run.owner] = row
    grid = []
    for owner, nickname in names.items():
        row = latest.get(owner)
        state = row.state if row is not None else "not_started"
        if state in ("not_started", "below", "stopped", "failed"):
            moments = [race.started_at, last_active.get(owner, 0.0)]
            if row is not None:
                moments.append(row.run.ended_at or row.run.created_at)
            quiet = now - max(moments)
            if quiet >= STUCK_AFTER:
                grid.append(Progress(owner, nickname, "idle", row, int(quiet // 60)))
                continue
        grid.append(Progress(owner, nickname, state, row))
    return sorted(grid, key=lambda progress: name_order(progress.nickname))


def check_race_name(name: str) -> str:
    """The race's name, tidied, or ValueError saying what a name may be."""
    cleaned = " ".join(str(name or "").split())
    low, high = NAME_LENGTH
    if not low <= len(cleaned) <= high:
        raise ValueError(_("A race's name has {low} to {high} characters (this one has {count}).").format(low=low, high=high, count=len(cleaned)))
    if any(ord(character) < 32 for character in cleaned):
        raise ValueError(_("A race's name cannot contain control characters."))
    return cleaned


def check_race_target(target) -> float:
    """The target as a fraction (0.89 for 89%), or ValueError saying which targets a race can have."""
    try:
        value = float(target)
    except (TypeError, ValueError):
        value = float("nan")
    if not math.isfinite(value) or not 0.1 <= value <= 1.0:
        raise ValueError(_("A race's target is a validation accuracy from 10% to 100%."))
    return value


def in_race(race: Race, run: RunSnapshot) -> bool:
    """A run is in the race when it was pressed after the race started (the app's own shared quick models never are)."""
    return run.created_at >= race.started_at and run.shared_key is None


def _batches_per_epoch(run: RunSnapshot) -> int | None:
    if run.plan and run.plan.get("batches_per_epoch"):
        return int(run.plan["batches_per_epoch"])
    for point in (run.latest_batch, run.stopped_at):
        if point is not None and point.batches_per_epoch:
            return point.batches_per_epoch
    return None


def race_points(run: RunSnapshot) -> tuple[RacePoint, ...]:
    """The run's line: validation accuracy at the end of each epoch. An epoch the run stopped inside (the target reached
    at a check, or Stop) sits where it stopped; where the stop reached the target on validation accuracy, the point is
    the value the stop saw, so the line crosses the target where the student's own result says."""
    per_epoch = _batches_per_epoch(run)
    reached = run.result.target_reached if run.result is not None else None
    if reached is not None and run.settings.monitor != "val_accuracy":
        reached = None  # it stopped on training accuracy: the race draws validation accuracy only
    stopped = run.stopped_at or (run.result.stopped_at if run.result is not None else None)

    def where(epoch: int, batch: int) -> float:
        if per_epoch and 0 < batch < per_epoch:
            return epoch - 1 + batch / per_epoch
        return float(epoch)

    points = []
    for record in run.epochs:
        value = record.val_accuracy
        if value is None or not math.isfinite(value):
            continue
        epoch, seconds = float(record.epoch), record.seconds
        if reached is not None and reached.epoch == record.epoch:
            epoch, value, seconds = where(reached.epoch, reached.batch), reached.value, reached.seconds
        elif stopped is not None and stopped.epoch == record.epoch:
            epoch = where(stopped.epoch, stopped.batch)
        points.append(RacePoint(epoch, float(value), seconds))
    if reached is not None and all(record.epoch != reached.epoch for record in run.epochs):
        points.append(RacePoint(where(reached.epoch, reached.batch), reached.value, reached.seconds))
    return tuple(sorted(points, key=lambda point: point.epoch))


def first_reach(points, target: float) -> RacePoint | None:
    """The first point at or above the target (the stop's rule), or None."""
    return next((point for point in points if point.value >= target), None)


def _effective(settings: TrainingSettings) -> dict:
    """The settings that change a training, with the preset's recipe filled in (None means "the preset's")."""
    recipe = settings.base_recipe
    return {
        "dataset": settings.dataset,
        "network": settings.config,
        "learning_rate": settings.learning_rate or recipe.learning_rate,
        "batch_size": settings.batch_size or recipe.batch_size,
        "max_epochs": settings.max_epochs or recipe.max_epochs,
        "train_size": settings.train_size,
        "validation_split": settings.validation_split,
        "normalization": settings.normalization,
        "monitor": settings.monitor,
        "target_accuracy": settings.target_accuracy,
        "seed": settings.seed,
    }


def _network_difference(config, reference) -> str:
    if not config.conv_blocks and not reference.conv_blocks and len(config.dense_units) == len(reference.dense_units) == 1:
        units = config.dense_units[0]
        return ngettext("{units} unit", "{units} units", units).format(units=number(units))
    return network_text(config)


def differences(settings: TrainingSettings, reference: TrainingSettings) -> list[str]:
    """How a run's settings differ from the step raced, in a few words each: "lr 0.003", "256 units", "batch 64"."""
    mine, theirs = _effective(settings), _effective(reference)
    words = {
        "dataset": lambda value: _(dataset_title(value)),
        "network": lambda value: _network_difference(value, theirs["network"]),
        "learning_rate": lambda value: _("lr {value}").format(value=decimal(value)),
        "batch_size": lambda value: _("batch {value}").format(value=number(value)),
        "max_epochs": lambda value: ngettext("{count} epoch", "{count} epochs", value).format(count=number(value)),
        "train_size": lambda value: _("all images") if value is None else _("{count} images").format(count=number(value)),
        "validation_split": lambda value: _("validation {value}").format(value=percent(value, 0)),
        "normalization": lambda value: "x / 255" if value == "divide_255" else "keras.utils.normalize",
        "monitor": lambda value: _("watches training accuracy") if value == "accuracy" else _("watches validation accuracy"),
        "target_accuracy": lambda value: _("no target") if value is None else _("own target {value}").format(value=percent(value)),
        "seed": lambda value: _("seed {value}").format(value=value),
    }
    return [words[key](value) for key, value in mine.items() if value != theirs[key]]


def reference_of(race: Race, runs) -> TrainingSettings | None:
    """What labels compare to: the step raced, else the settings most runs of the race have."""
    if race.reference is not None:
        return race.reference
    counted = Counter(repr(_effective(run.settings)) for run in runs)
    if not counted:
        return None
    common = counted.most_common(1)[0][0]
    return next(run.settings for run in runs if repr(_effective(run.settings)) == common)


def _who(names: list[str]) -> str:
    if len(names) <= 2:
        return ", ".join(names)
    return _("{name} and {count} more").format(name=names[0], count=len(names) - 1)


def race_lines(race: Race, runs, names: dict[str, str], show_names: bool = True) -> list[RaceLine]:
    """The race's lines: one per training (classmates pressing Train with the same settings share one), labelled with
    who trains it and how it differs from the step raced ("Ali · lr 0.003"). `names` maps a run's owner to a
    nickname; without names shown, a line is "run 12"."""
    held = sorted((run for run in runs if in_race(race, run) and run.owner in names), key=lambda run: run.run_id)
    reference = reference_of(race, held)
    by_training: dict[str, list[RunSnapshot]] = {}
    for run in held:
        key = run.training_key or f"run:{run.run_id}"
        if run.shared_from is not None:
            key = f"copy:{run.run_id}"  # took an earlier training's result at once: its own line, not timed
        by_training.setdefault(key, []).append(run)
    lines = []
    for group in by_training.values():
        who_names = sorted({names[run.owner] for run in group}, key=name_order)
        who = _who(who_names) if show_names else _("run {run}").format(run=group[0].run_id)
        differs = differences(group[0].settings, reference) if reference is not None else []
        label = " · ".join([who, *differs])
        lines.append(RaceLine(tuple(group), tuple(who_names), label, race_points(group[0])))
    return lines


def from_pressing(run: RunSnapshot, point: RacePoint) -> float | None:
    """Seconds from pressing Train to this point: the wait in the queue, then the training up to it."""
    if run.started_at is None:
        return None
    return max(0.0, run.started_at - run.created_at) + point.seconds


def standings(race: Race, lines: list[RaceLine]) -> list[Standing]:
    """The leaderboard, one row per run: those that reached the target by time from pressing Train, then the others by
    their best validation accuracy."""
    rows = []
    for line in lines:
        reached = first_reach(line.points, race.target)
        best = max((point.value for point in line.points), default=None)
        for run in line.runs:
            copied = run.shared_from
            timed = reached if copied is None else None
            rows.append(
                Standing(
                    run=run,
                    label=line.label,
                    reached=reached,
                    from_pressing=from_pressing(run, timed) if timed is not None else None,
                    best=best,
                    copied_from=copied,
                )
            )

    def order(row: Standing):
        if row.from_pressing is not None:
            return (0, row.from_pressing, row.run.run_id)
        if row.reached is not None:
            return (1, 0.0, row.run.run_id)
        return (2, -(row.best if row.best is not None else -1.0), row.run.run_id)

    return sorted(rows, key=order)


def first_to_reach(table: list[Standing]) -> Standing | None:
    """Who reached the race's target first (by time from pressing Train), or None yet."""
    return next((row for row in table if row.from_pressing is not None), None)


def leaders(table: list[Standing], count: int = LEADERS) -> list[str]:
    """The labels of the leading lines (labelled and drawn thick on the chart), best first."""
    labels: list[str] = []
    for row in table:
        if row.label not in labels and (row.reached is not None or row.best is not None):
            labels.append(row.label)
    return labels[:count]
