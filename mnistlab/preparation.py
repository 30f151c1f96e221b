"""Data preparation for training: a seeded validation split, normalised validation and test sets.

The training images stay uint8 and are normalised a batch at a time while training
(`mnistlab.batches.ShuffledBatches`), which keeps one float copy of the training set
out of memory. Extra labelled images (a class's own drawings) can be added to the
training set; they are shuffled in with the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnistlab.datasets import Dataset, normalize_images
from mnistlab.settings import TrainingSettings


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


def prepare_data(
    dataset: Dataset,
    settings: TrainingSettings,
    extra_train: tuple[np.ndarray, np.ndarray] | None = None,
) -> PreparedData:
    """Hold out a shuffled (seeded) validation split of the training set, and normalise it and the test set.

    `extra_train` (uint8 images and labels) joins the training images after the split,
    so the validation set stays a fair sample of the dataset itself.
    """
    if settings.train_size or settings.test_size:
        dataset = dataset.subset(settings.train_size, settings.test_size, seed=settings.seed)
    x_test = normalize_images(dataset.x_test, settings.normalization)
    x_train, y_train, y_test = dataset.x_train, dataset.y_train, dataset.y_test
    validation_count = int(round(len(y_train) * settings.validation_split))
    x_val = y_val = None
    if validation_count:
        order = np.random.default_rng(settings.seed).permutation(len(y_train))
        validation, training = order[:validation_count], order[validation_count:]
        x_val = normalize_images(x_train[validation], settings.normalization)
        y_val = y_train[validation]
        x_train, y_train = x_train[training], y_train[training]
    if extra_train is not None and len(extra_train[1]):
        images, labels = extra_train
        images = np.asarray(images, np.uint8)
        if images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise ValueError(f"Extra training images must be 28x28 with one label each, got {images.shape} and {len(labels)} labels.")
        x_train = np.concatenate([x_train, images])
        y_train = np.concatenate([y_train, np.asarray(labels, y_train.dtype)])
    return PreparedData(x_train, y_train, x_val, y_val, x_test, y_test, settings.normalization)
