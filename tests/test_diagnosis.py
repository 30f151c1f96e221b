"""A network that stopped learning (a learning rate far too high) is recognised from its result, and the student told."""

from __future__ import annotations

import math

from mnistlab.diagnosis import advice, stopped_learning, suggested_rate
from mnistlab.events import EpochRecord, TrainingResult
from mnistlab.i18n import set_language
from mnistlab.settings import TrainingSettings
from tests.test_jobs import result_for

HIGH = TrainingSettings(dataset="mnist", arch="dense", learning_rate=1.0, target_accuracy=None)


def result(loss: float, accuracy: float, **changes) -> TrainingResult:
    base = result_for(HIGH)
    values = {**base.to_dict(), "train_loss": loss, "test_loss": loss, "train_accuracy": accuracy, "val_accuracy": accuracy}
    values.update(test_accuracy=accuracy, history=[EpochRecord(1, loss, accuracy, loss, accuracy, 1.0).__dict__], **changes)
    return TrainingResult.from_dict(values)


def test_a_loss_worse_than_a_guess_with_an_accuracy_about_chance_stopped_learning():
    assert stopped_learning(result(10.2, 0.100))  # issue 35's dense512,dense512 at learning rate 1
    assert stopped_learning(result(float("nan"), 0.098))
    assert stopped_learning(result(float("inf"), 0.5))


def test_a_network_that_learned_little_or_well_did_not():
    assert not stopped_learning(result(2.29, 0.11))  # about a guess's loss: it has only learned little (few images or epochs)
    assert not stopped_learning(result(3.1, 0.62))  # overconfident but it learned
    assert not stopped_learning(result(0.31, 0.91))


def test_the_advice_says_what_happened_and_the_rate_to_try():
    said = advice(result(10.2, 0.100), HIGH)
    assert "stopped learning" in said and "10.20" in said and f"{math.log(10):.2f}" in said and "(10.0%)" in said
    assert "too high (1)" in said and "Try 0.001." in said
    assert advice(result(0.31, 0.91), HIGH) is None
    set_language("tr")
    try:
        assert "10,20" in advice(result(10.2, 0.100), HIGH) and "0,001" in advice(result(10.2, 0.100), HIGH)
    finally:
        set_language("en")


def test_the_rate_to_try_is_the_presets_own_or_a_tenth():
    assert suggested_rate(HIGH) == 0.001
    assert suggested_rate(TrainingSettings(dataset="mnist", arch="dense", target_accuracy=None)) == 0.0001  # already the preset's
    assert suggested_rate(TrainingSettings(dataset="mnist", arch="dense", learning_rate=0.0005, target_accuracy=None)) == 0.00005
