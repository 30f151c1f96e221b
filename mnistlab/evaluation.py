"""Evaluate a model on a test set: accuracy, loss, confusion matrix, per-class accuracy.

Everything is computed from one pass of predictions, so the page can show the
confusion matrix, the misclassified images and the per-class accuracy without
running the model again.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from mnistlab.datasets import normalize_images


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Predictions on a test set and the figures derived from them."""

    labels: np.ndarray
    predicted: np.ndarray
    probabilities: np.ndarray
    class_names: tuple[str, ...]

    @property
    def accuracy(self) -> float:
        return float((self.predicted == self.labels).mean()) if len(self.labels) else 0.0

    @property
    def loss(self) -> float:
        """Mean cross-entropy, as Keras' sparse categorical cross-entropy computes it."""
        chosen = self.probabilities[np.arange(len(self.labels)), self.labels]
        return float(-np.log(np.clip(chosen, 1e-7, 1.0)).mean()) if len(self.labels) else 0.0

    @property
    def confusion(self) -> np.ndarray:
        """confusion[true, predicted] counts images."""
        size = len(self.class_names)
        return np.bincount(self.labels * size + self.predicted, minlength=size * size).reshape(size, size)

    @property
    def per_class_accuracy(self) -> np.ndarray:
        confusion = self.confusion
        totals = confusion.sum(axis=1)
        return np.divide(np.diag(confusion), totals, out=np.zeros(len(totals)), where=totals > 0)

    def indices(self, true_class: int, predicted_class: int) -> np.ndarray:
        """Test images of `true_class` that the model called `predicted_class`."""
        return np.flatnonzero((self.labels == true_class) & (self.predicted == predicted_class))

    @property
    def misclassified(self) -> np.ndarray:
        """Indices of wrong predictions, most confident mistakes first."""
        wrong = np.flatnonzero(self.predicted != self.labels)
        confidence = self.probabilities[wrong, self.predicted[wrong]]
        return wrong[np.argsort(-confidence, kind="stable")]


# Images scored per forward pass. A CNN's activations for a batch of 1,000 take a few hundred MB
# (the serving process's peak); 256 keeps that under 100 MB for a fraction of a second more.
SCORING_BATCH_SIZE = 256


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled_forward(model):
    """The model's inference pass as one TensorFlow graph, made once per model (a Python call per layer and batch cost
    more than the arithmetic for small networks: scoring a pack of twelve took seconds)."""
    function = _COMPILED.get(model)
    if function is None:
        import tensorflow as tf

        owner = weakref.ref(model)  # the cache must not keep the model alive
        function = tf.function(lambda images: owner()(images, training=False), input_signature=[tf.TensorSpec((None, 28, 28), tf.float32)])
        _COMPILED[model] = function
    return function


def forward(model, inputs: np.ndarray, batch_size: int = SCORING_BATCH_SIZE) -> np.ndarray:
    """The model's probabilities for inputs that are already normalised, batch by batch, in inference mode."""
    inputs = np.asarray(inputs, np.float32)
    if inputs.ndim != 3 or inputs.shape[1:] != (28, 28):
        chunks = [np.asarray(model(inputs[start : start + batch_size], training=False)) for start in range(0, len(inputs), batch_size)]
    else:
        function = _compiled_forward(model)
        chunks = [function(inputs[start : start + batch_size]).numpy() for start in range(0, len(inputs), batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, 10), np.float32)


def predict_probabilities(model, images: np.ndarray, normalization: str, batch_size: int = SCORING_BATCH_SIZE) -> np.ndarray:
    """Probabilities for uint8-range images, normalised and scored batch by batch in inference mode."""
    chunks = []
    for start in range(0, len(images), batch_size):
        chunks.append(forward(model, normalize_images(images[start : start + batch_size], normalization), batch_size))
    return np.concatenate(chunks) if chunks else np.zeros((0, 10), np.float32)


def accuracy(model, inputs: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the model on normalised inputs, without touching its compiled metrics."""
    if len(labels) == 0:
        return 0.0
    return float((forward(model, inputs).argmax(axis=1) == np.asarray(labels)).mean())


def evaluate(model, images: np.ndarray, labels: np.ndarray, normalization: str, class_names: tuple[str, ...]) -> Evaluation:
    """Run the model on a test set and return an Evaluation."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels.")
    return evaluation_from_probabilities(predict_probabilities(model, images, normalization), labels, class_names)


def evaluation_from_probabilities(probabilities: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]) -> Evaluation:
    """An Evaluation from probabilities already computed (by a training worker, for instance)."""
    probabilities = np.asarray(probabilities, np.float32)
    if len(probabilities) != len(labels):
        raise ValueError(f"{len(probabilities)} predictions but {len(labels)} labels.")
    predicted = probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, np.int64)
    return Evaluation(np.asarray(labels, np.int64), predicted.astype(np.int64), probabilities, tuple(class_names))
