"""Packed training: several networks in one pass give each the result it would have alone."""

from __future__ import annotations

import threading

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


def test_the_networks_share_out_among_lanes_with_about_equal_work():
    from mnistlab.packing import _lanes_for

    class Network:
        def __init__(self, parameters):
            self.parameters = parameters

        def count_params(self):
            return self.parameters

    networks = [Network(size) for size in (50, 100, 200, 50, 100, 200)]
    lanes = _lanes_for(list(range(6)), networks, 2)
    assert sorted(number for lane in lanes for number in lane) == list(range(6))  # every network once
    assert [sum(networks[number].parameters for number in lane) for lane in lanes] == [350, 350]
    assert _lanes_for([4], networks, 2) == [[4]]  # a pack of one has one lane, and no threads
    assert len(_lanes_for(list(range(6)), networks, 1)) == 1
