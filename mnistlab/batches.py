"""Shuffled training batches, normalised one batch at a time from the uint8 images.

Keras turns numpy arrays given to `model.fit` into tensors and shuffles them by copying,
so a float32 training set sits in memory more than once (Fashion-MNIST: 188 MB a copy).
`ShuffledBatches` keeps only the uint8 images (47 MB) and normalises each batch when
Keras asks for it. It trains just as fast here; the benchmark measures the memory of a
serving process with a training running (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import keras
import numpy as np

from mnistlab.datasets import normalize_images


class ShuffledBatches(keras.utils.PyDataset):
    """(images, labels) batches in a new random order every epoch, reproducible from `seed`."""

    def __init__(self, pixels: np.ndarray, labels: np.ndarray, batch_size: int, normalization: str = "divide_255", seed: int = 0):
        super().__init__()
        if len(pixels) != len(labels):
            raise ValueError(f"{len(pixels)} images but {len(labels)} labels: every image needs one label.")
        if len(labels) == 0:
            raise ValueError("There are no training images to make batches from.")
        if batch_size < 1:
            raise ValueError(f"The batch size must be at least 1, got {batch_size}.")
        # Fail now, not in the middle of training, if the normalisation is unknown.
        normalize_images(pixels[:1], normalization)
        self.pixels, self.labels = pixels, labels
        self.batch_size, self.normalization = batch_size, normalization
        self._random = np.random.default_rng(seed)
        self._order = self._random.permutation(len(labels))

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(f"Batch {index} does not exist; there are {len(self)}.")
        # Sorted indices read memory in order; the order inside a batch does not matter.
        chosen = np.sort(self._order[index * self.batch_size : (index + 1) * self.batch_size])
        return normalize_images(self.pixels[chosen], self.normalization), self.labels[chosen]

    def on_epoch_end(self) -> None:
        self._order = self._random.permutation(len(self.labels))
