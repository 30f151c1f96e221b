"""Packed training: several networks in one pass give each the result it would have alone."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest

from mnistlab.events import TrainingListener
from mnistlab.models import parse_network
from mnistlab.packing import can_pack, pack_key, train_pack
from mnistlab.settings import TrainingSettings
from mnistlab.training import train

BASE = dict(dataset="mnist", target_accuracy=None, max_epochs=2, train_size=2000, test_size=300, batch_size=32)


@pytest.fixture(scope="module")
def variations():
    return [
        TrainingSettings(arch="dense", **BASE),
        TrainingSettings(arch="dense", **{**BASE, "max_epochs": 1}, learning_rate=0.003),
        TrainingSettings(arch="custom", model_config=parse_network("dense48,dense24,elu"), **BASE),
    ]


@pytest.mark.slow
def test_packed_networks_train_exactly_as_they_would_alone(digits_sample, variations):
    packed = train_pack(variations, digits_sample)
    for settings, together in zip(variations, packed):
        alone = train(settings, digits_sample)
        assert [record.epoch for record in together.result.history] == [record.epoch for record in alone.result.history]
        for ours, theirs in zip(together.result.history, alone.result.history):
            assert ours.loss == pytest.approx(theirs.loss, abs=1e-4) and ours.accuracy == pytest.approx(theirs.accuracy, abs=1e-3)
            assert ours.val_accuracy == pytest.approx(theirs.val_accuracy, abs=1e-3)
        for ours, theirs in zip(together.model.get_weights(), alone.model.get_weights()):
            np.testing.assert_allclose(ours, theirs, atol=1e-4)
        assert together.result.test_accuracy == pytest.approx(alone.result.test_accuracy, abs=0.005)


def test_a_network_gets_the_same_result_bit_for_bit_in_a_pack_of_one_and_in_a_pack_of_several(digits_sample, variations):
    """The app trains a dense network with the pack engine even alone, so its result is the same whoever trained with it."""
    packed = train_pack(variations, digits_sample)
    for settings, together in zip(variations, packed):
        (alone,) = train_pack([settings], digits_sample)
        for ours, theirs in zip(together.model.get_weights(), alone.model.get_weights(), strict=True):
            np.testing.assert_array_equal(ours, theirs)
        assert together.result.test_accuracy == alone.result.test_accuracy
        assert [record.val_accuracy for record in together.result.history] == [record.val_accuracy for record in alone.result.history]


def test_each_network_leaves_at_its_own_end_and_a_stop_stops_only_it(digits_sample, variations):
    stop = threading.Event()

    class StopAfterTheFirstReport(TrainingListener):
        def __init__(self):
            self.batches = 0

        def on_batch_end(self, progress):
            self.batches += 1
            if self.batches == 1:
                stop.set()

    left = []
    packed = train_pack(
        variations,
        digits_sample,
        listeners=[[], [], [StopAfterTheFirstReport()]],
        cancels=[None, None, stop],
        on_done=lambda number, trained: left.append((number, trained.result.stop_reason)),
    )
    assert left[0] == (2, "cancelled")  # stopped early, the others went on
    assert sorted(left[1:]) == [(0, "max epochs"), (1, "max epochs")]
    assert [trained.result.epochs_run for trained in packed] == [2, 1, 0]  # stopped in its first epoch
    assert packed[2].result.stopped_at.batch < packed[2].result.stopped_at.batches_per_epoch


def test_only_dense_networks_that_read_the_same_batches_pack():
    dense, cnn = TrainingSettings(arch="dense", **BASE), TrainingSettings(arch="cnn", **BASE)
    assert can_pack(dense) and not can_pack(cnn)
    assert not can_pack(TrainingSettings(arch="custom", model_config=parse_network("dense64,augment"), **BASE))
    assert pack_key(dense) == pack_key(TrainingSettings(arch="dense", **{**BASE, "max_epochs": 9}, learning_rate=0.01))
    assert pack_key(dense) != pack_key(TrainingSettings(arch="dense", **BASE, seed=1))
    with pytest.raises(ValueError, match="read the same batches"):
        train_pack([dense, TrainingSettings(arch="dense", **BASE, seed=1)])


def test_networks_of_one_structure_share_one_compiled_step_across_packs(digits_sample, variations, monkeypatch):
    """Another learning rate or seed needs no new compile; another network, optimizer or schedule does."""
    from collections import OrderedDict

    from mnistlab import packing
    from mnistlab.training import prepare

    made = []
    original = packing.CompiledStep.__init__

    def counted(self, model, optimizer):
        made.append(model.count_params())
        original(self, model, optimizer)

    monkeypatch.setattr(packing, "_COMPILED", OrderedDict())
    monkeypatch.setattr(packing.CompiledStep, "__init__", counted)
    train_pack(variations, digits_sample)  # dense at two learning rates, and a custom network
    assert len(made) == 2
    train_pack([TrainingSettings(arch="dense", **{**BASE, "seed": 7, "max_epochs": 1}, learning_rate=0.01)], digits_sample)
    assert len(made) == 2  # the same structure, compiled in the first pack
    monkeypatch.setattr(packing, "KEEP_COMPILED", 1)  # the process keeps only the last one used
    train_pack([variations[2]], digits_sample)
    assert len(made) == 2 and len(packing._COMPILED) == 1
    train_pack([variations[0]], digits_sample)
    assert len(made) == 3  # compiled again

    def structure(recipe: dict | None = None, **changes):
        ready = prepare(TrainingSettings(**{"arch": "dense", **BASE, **changes}), digits_sample)
        return packing.structure_of(replace(ready, recipe=replace(ready.recipe, **(recipe or {}))))

    assert structure() == structure(learning_rate=0.01) == structure(seed=3)
    assert structure() != structure(arch="dense2")
    assert structure({"optimizer": "adamw"}) != structure()
    one_cycle = {"schedule": "one_cycle"}
    assert structure(one_cycle) != structure(one_cycle, learning_rate=0.01)  # the peak is compiled in


def test_a_compiled_step_refuses_a_network_of_another_structure(digits_sample, monkeypatch):
    from collections import OrderedDict

    from mnistlab import packing
    from mnistlab.optimizers import make_optimizer
    from mnistlab.training import build, prepare

    def network(arch):
        ready = prepare(TrainingSettings(arch=arch, **BASE), digits_sample)
        return build(ready, compiled=False), make_optimizer(ready.recipe, 100), packing.structure_of(ready)

    monkeypatch.setattr(packing, "_COMPILED", OrderedDict())  # whatever the tests before compiled
    model, optimizer, structure = network("dense")
    optimizer.build(model.trainable_variables)
    packing.compiled_step(structure, model, optimizer)
    other, other_optimizer, _ = network("dense2")
    other_optimizer.build(other.trainable_variables)
    with pytest.raises(RuntimeError, match="does not have the variables of its structure"):
        packing.compiled_step(structure, other, other_optimizer)


def test_a_compiled_step_does_not_depend_on_how_many_batches_it_trains(digits_sample):
    """An epoch's last group has fewer batches: the same compiled program trains it (XLA compiles per program)."""
    import tensorflow as tf

    from mnistlab import packing
    from mnistlab.optimizers import make_optimizer
    from mnistlab.training import build, prepare

    ready = prepare(TrainingSettings(arch="dense", **BASE), digits_sample)
    model, optimizer = build(ready, compiled=False), make_optimizer(ready.recipe, 100)
    optimizer.build(model.trainable_variables)
    step = packing.CompiledStep(model, optimizer)
    shape = (packing.STEPS_PER_CALL, 32)
    variables = [variable.value for variable in packing._variables(model, optimizer)]
    arguments = variables, tf.zeros(shape + (28, 28)), tf.zeros(shape, tf.int32), tf.ones(shape)

    def program(batches: int) -> str:
        return step._step.experimental_get_compiler_ir(*arguments, tf.constant(batches))(stage="hlo")

    assert program(packing.STEPS_PER_CALL) == program(5)


def test_a_network_that_cannot_join_its_classmates_pack_is_told_why_in_words():
    """Issue 33: a student whose network trained alone was not told why ("batch size 128, theirs 32")."""
    from mnistlab.i18n import set_language
    from mnistlab.packing import why_alone

    step = TrainingSettings(dataset="fashion_mnist", arch="dense", target_accuracy=0.89)
    built = TrainingSettings(dataset="fashion_mnist", arch="dense", target_accuracy=0.89, batch_size=128)
    assert why_alone(built, [step, step]) == "Batch size 128, theirs 32"
    assert why_alone(step, [step, built, step]) is None  # it is in the pack most of them are in
    assert why_alone(TrainingSettings(dataset="fashion_mnist", arch="fast_cnn"), [step]).startswith("a convolutional network trains alone")
    smaller = TrainingSettings(dataset="fashion_mnist", arch="dense", seed=7, train_size=5000)
    assert why_alone(smaller, [step]) == "Seed 7, theirs 42; Training images 5000, theirs all"
    set_language("tr")
    try:
        assert "onlarınki 32" in why_alone(built, [step])
    finally:
        set_language("en")
