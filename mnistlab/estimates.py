"""How long trainings take on this server, from its own recorded runs.

Two figures, both worked out from the runs this database recorded as finished (plain
functions over `RunSnapshot`s, so each is tested without a server):

- `measured_speed`: how this server's epochs compare with `mnistlab.sizing`'s estimate
  from a network's arithmetic (a `Speed` whose `scale` is the median ratio). The limits
  (`MNISTLAB_MAX_EPOCH_SECONDS`) and the Train page's "about N s an epoch" use it. It is
  measured per kind of network, since convolutions (oneDNN, maybe bfloat16) and dense
  layers (the pack engine, XLA) compare differently with the arithmetic, and only from runs
  that trained alone: a pack's epoch is the time of all its networks (a burst of 16 packed
  dense networks once made a CNN look 10x slower than it had just trained).
- `estimated_seconds`: a whole training of these settings: the median of the recorded
  runs of the same preset, network and data size, else the epoch estimate times its
  epochs. The queue's wait estimates use it.

`Estimates` keeps the latest figures for the job manager, which refreshes them from the
database now and then (outside its lock).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence

from mnistlab.runs import RunSnapshot
from mnistlab.settings import TrainingSettings
from mnistlab.sizing import Speed, epoch_seconds

# Seconds a training takes besides its epochs (loading, building, scoring).
STARTUP_SECONDS = 5.0


def trained_alone(run: RunSnapshot) -> bool:
    """Whether a run's network trained alone in its job (the job manager records how many trained together)."""
    return int((run.plan or {}).get("networks_in_job", 1) or 1) == 1


# An epoch of fewer images than this is mostly fixed costs (a class's own set of a few dozen drawings: a tenth of a second
# for one batch), and says nothing of how fast a full epoch goes. CI: one such training made the CNNs look ten times
# slower, and the next student's CNN was refused as too long.
MIN_MEASURED_IMAGES = 1_000


def measured_speed(recorded: Sequence[RunSnapshot], convolutional: bool) -> Speed:
    """This server's speed against the estimate for convolutional (or dense) networks: the median, over the newest 100
    recorded runs of that kind that trained alone on at least `MIN_MEASURED_IMAGES` images, of each run's median epoch
    (its first epoch left out: it compiles) divided by the estimate for that epoch."""
    ratios = []
    same_kind = [
        run
        for run in recorded
        if run.settings.config.is_convolutional == convolutional
        and trained_alone(run)
        and int((run.plan or {}).get("train_images") or 0) >= MIN_MEASURED_IMAGES
    ]
    for run in same_kind[:100]:
        plan = run.plan or {}
        epochs = [record.epoch_seconds for record in run.epochs[1:] if record.epoch_seconds]
        try:
            if epochs and plan.get("train_images") and plan.get("batch_size"):
                estimate = epoch_seconds(run.settings.config, int(plan["train_images"]), int(plan["batch_size"]))
                if estimate > 0:
                    ratios.append(statistics.median(epochs) / estimate)
        except (ValueError, TypeError):
            continue
    if not ratios:
        return Speed()
    return Speed(scale=min(10.0, max(0.2, statistics.median(ratios))), measured_epochs=len(ratios))


def estimated_seconds(settings: TrainingSettings, recorded: Sequence[RunSnapshot], speed: Speed) -> float:
    """How long a training of these settings takes here (see the module docstring), with `speed` for its epochs."""
    same = [
        run.ended_at - run.started_at
        for run in recorded
        if run.settings.dataset == settings.dataset
        and run.settings.arch == settings.arch
        and run.settings.train_size == settings.train_size
        and run.settings.config == settings.config
        and run.ended_at
        and run.started_at
    ]
    if same:
        return float(statistics.median(same))
    from mnistlab.datasets import published_train_size

    images = settings.train_size or int(published_train_size(settings.dataset) * (1 - settings.validation_split))
    recipe = settings.recipe_for(images)
    return STARTUP_SECONDS + recipe.max_epochs * epoch_seconds(settings.config, images, recipe.batch_size, speed)


class Estimates:
    """The latest recorded runs and the figures worked out from them (replaced whole by `update`, read from any thread)."""

    def __init__(self):
        self.update(())

    def update(self, recorded: Sequence[RunSnapshot]) -> None:
        speeds = {convolutional: measured_speed(recorded, convolutional) for convolutional in (False, True)}
        self.recorded, self.speeds, self._seconds = tuple(recorded), speeds, {}

    def speed(self, convolutional: bool) -> Speed:
        return self.speeds[convolutional]

    def seconds(self, settings: TrainingSettings) -> float:
        """`estimated_seconds` for these settings, worked out once per refresh."""
        key = json.dumps(settings.to_dict(), sort_keys=True, default=str)
        seconds = self._seconds.get(key)
        if seconds is None:
            speed = self.speed(settings.config.is_convolutional)
            seconds = self._seconds[key] = estimated_seconds(settings, self.recorded, speed)
        return seconds
