"""Training batches: every image once per epoch, a new seeded order each epoch, normalised like the rest."""

import numpy as np
import pytest

pytest.importorskip("keras")

from mnistlab.batches import ShuffledBatches
from mnistlab.datasets import normalize_images
from mnistlab.preparation import prepare_data
from mnistlab.settings import TrainingSettings


def _pixels(count=10):
    # Image i is filled with the value i, so a batch tells which images it holds.
    return np.repeat(np.arange(count, dtype=np.uint8), 28 * 28).reshape(count, 28, 28) * 20


def _epoch(batches):
    return [batches[index] for index in range(len(batches))]


def test_each_epoch_holds_every_image_once_with_its_label():
    pixels, labels = _pixels(), np.arange(10) % 10
    batches = ShuffledBatches(pixels, labels, batch_size=4)
    assert len(batches) == 3
    epoch = _epoch(batches)
    assert [len(y) for _, y in epoch] == [4, 4, 2]
    seen = np.concatenate([y for _, y in epoch])
    assert sorted(seen.tolist()) == list(range(10))
    for images, batch_labels in epoch:
        assert images.dtype == np.float32 and images.shape[1:] == (28, 28)
        # Each image still matches its label, and is normalised as the rest of the app does it.
        np.testing.assert_allclose(images, normalize_images(pixels[batch_labels]))


def test_order_changes_each_epoch_and_repeats_with_the_seed():
    def make():
        return ShuffledBatches(np.zeros((100, 28, 28), np.uint8), np.arange(100), batch_size=10, seed=7)

    def split(batches):
        # Which images go together in each batch (inside a batch they come sorted).
        return [labels.tolist() for _, labels in _epoch(batches)]

    first, second = make(), make()
    epoch_one = split(first)
    assert epoch_one == split(second)
    assert epoch_one != [list(range(start, start + 10)) for start in range(0, 100, 10)]
    first.on_epoch_end()
    second.on_epoch_end()
    assert split(first) == split(second) != epoch_one


def test_other_normalisation_is_applied_per_batch():
    pixels = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    batches = ShuffledBatches(pixels, np.arange(6), batch_size=6, normalization="keras_normalize")
    images, labels = batches[0]
    np.testing.assert_allclose(images, normalize_images(pixels[labels], "keras_normalize"))


@pytest.mark.parametrize(
    "arguments, message",
    [
        ((np.zeros((3, 28, 28), np.uint8), np.arange(2), 2), "every image needs one label"),
        ((np.zeros((0, 28, 28), np.uint8), np.arange(0), 2), "no training images"),
        ((np.zeros((3, 28, 28), np.uint8), np.arange(3), 0), "at least 1"),
    ],
)
def test_bad_input_is_explained(arguments, message):
    with pytest.raises(ValueError, match=message):
        ShuffledBatches(*arguments)


def test_unknown_normalisation_fails_before_training():
    with pytest.raises(ValueError, match="Unknown normalisation"):
        ShuffledBatches(np.zeros((3, 28, 28), np.uint8), np.arange(3), 2, normalization="sqrt")


def test_a_batch_past_the_end_raises_index_error():
    batches = ShuffledBatches(np.zeros((3, 28, 28), np.uint8), np.arange(3), 2)
    with pytest.raises(IndexError):
        batches[2]


def test_prepared_training_images_stay_uint8(digits_sample):
    data = prepare_data(digits_sample, TrainingSettings(dataset="mnist", arch="dense", validation_split=0.1))
    assert data.train_pixels.dtype == np.uint8
    assert data.x_val.dtype == np.float32 and data.x_test.dtype == np.float32
    assert len(data.train_pixels) + len(data.y_val) == len(digits_sample.y_train)
    images, _ = data.training_batches(32)[0]
    assert images.dtype == np.float32 and 0.0 <= images.min() and images.max() <= 1.0
