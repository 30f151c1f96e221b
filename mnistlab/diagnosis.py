"""What went wrong in a training that a student can learn from: a network that stopped learning.

With a learning rate far too high (1 instead of 0.001), each step overshoots: the loss
grows instead of shrinking, the weights blow up, and the network ends up answering no
better than a guess. It still trains to its last epoch and saves a model, so without a word
a student would think it worked. `stopped_learning` recognises it from the result alone:
its loss is not a number, or it is worse than a uniform guess over the classes (ln 10 =
2.30 for ten classes) while the accuracy is about chance. `advice` says so in plain words,
with the learning rate to try; the Train page and the command line show it.
"""

from __future__ import annotations

import math

from mnistlab.events import TrainingResult
from mnistlab.i18n import _, decimal, number, percent
from mnistlab.settings import TrainingSettings

# Within this many points of chance (1 / classes), an accuracy is "no better than a guess".
NEAR_CHANCE = 0.05


def _accuracy(result: TrainingResult) -> float | None:
    for value in (result.test_accuracy, result.val_accuracy, result.train_accuracy):
        if value is not None and math.isfinite(value):
            return value
    return None


def stopped_learning(result: TrainingResult, classes: int = 10) -> bool:
    """Whether the network ended worse than a guess: a loss that is not a number, or one above a uniform guess's with an
    accuracy about chance. (A network that only learned little, on few images or epochs, ends near a guess's loss.)"""
    if result.stop_reason == "cancelled" and not result.history:
        return False  # stopped before it trained: nothing to say
    loss = result.train_loss if result.train_loss is not None else result.test_loss
    if loss is None:
        return False
    if not math.isfinite(loss):
        return True
    accuracy = _accuracy(result)
    return loss > math.log(classes) and accuracy is not None and accuracy <= 1 / classes + NEAR_CHANCE


def suggested_rate(settings: TrainingSettings) -> float:
    """A learning rate to try instead: the preset's own when the student raised it, else a tenth of the one used."""
    used = settings.learning_rate or settings.base_recipe.learning_rate
    default = settings.base_recipe.learning_rate
    return default if default < used else used / 10


def advice(result: TrainingResult, settings: TrainingSettings, classes: int = 10) -> str | None:
    """What to tell the student when the network stopped learning (None when it did not)."""
    if not stopped_learning(result, classes):
        return None
    used = settings.learning_rate or settings.base_recipe.learning_rate
    loss = result.train_loss if result.train_loss is not None else result.test_loss
    accuracy = _accuracy(result)
    return _(
        "The network stopped learning: its loss grew to {loss} (a guess scores {guess}) and it answers no better than "
        "chance ({accuracy}). The learning rate is too high ({rate}): each step overshoots. Try {suggestion}."
    ).format(
        loss=_("not a number") if loss is None or not math.isfinite(loss) else number(loss, 2),
        guess=number(math.log(classes), 2),
        accuracy=percent(accuracy) if accuracy is not None else "?",
        rate=decimal(used),
        suggestion=decimal(suggested_rate(settings)),
    )
