"""Fast predictions for one image at a time (a drawing, an upload, a test image).

`model.predict` costs tens of milliseconds per call because it sets up a whole data
pipeline; a compiled `tf.function` around `model(x, training=False)` costs about a
millisecond, which keeps the Draw page responsive after every stroke.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from mnistlab.datasets import normalize_images
from mnistlab.preprocessing import Preprocessed, preprocess


@dataclass(frozen=True, eq=False)
class Prediction:
    """The network's answer for one image."""

    preprocessed: Preprocessed
    probabilities: np.ndarray  # shape (10,), sums to 1; zeros when the image is empty
    class_names: tuple[str, ...]

    @property
    def is_empty(self) -> bool:
        return self.preprocessed.is_empty

    @property
    def top_class(self) -> int | None:
        return None if self.is_empty else int(np.argmax(self.probabilities))

    @property
    def top_name(self) -> str | None:
        top = self.top_class
        return None if top is None else self.class_names[top]

    @property
    def confidence(self) -> float | None:
        top = self.top_class
        return None if top is None else float(self.probabilities[top])

    def to_dict(self) -> dict:
        return {
            "empty": self.is_empty,
            "inverted": self.preprocessed.inverted,
            "top_class": self.top_class,
            "top_name": self.top_name,
            "probabilities": {name: round(float(p), 6) for name, p in zip(self.class_names, self.probabilities)},
        }


class Predictor:
    """Wraps a model with a compiled forward pass and the normalisation it was trained with."""

    def __init__(self, model, normalization: str = "divide_255", class_names: tuple[str, ...] | None = None):
        import tensorflow as tf

        normalize_images(np.zeros((1, 28, 28)), normalization)  # Fails early on an unknown method.
        self.model = model
        self.normalization = normalization
        self.class_names = tuple(class_names) if class_names else tuple(str(digit) for digit in range(10))
        scores = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else len(self.class_names)
        if len(self.class_names) != scores:
            raise ValueError(f"The model gives {scores} scores, one per class, but {len(self.class_names)} class names came with it.")
        self._forward = tf.function(
            lambda images: model(images, training=False),
            input_signature=[tf.TensorSpec(shape=(None, 28, 28), dtype=tf.float32)],
        )

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities for images in the 0..255 range, shape (N, 28, 28) or (28, 28)."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 2:
            images = images[None]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(f"The network takes 28x28 images, got shape {images.shape}.")
        return np.asarray(self._forward(normalize_images(images, self.normalization)))

    def predict_image(self, image: np.ndarray) -> Prediction:
        """Preprocess any image (a canvas, a photo) and predict its class."""
        return self.predict_preprocessed(preprocess(image))

    def predict_preprocessed(self, preprocessed: Preprocessed) -> Prediction:
        """Predict the class of an image that `preprocess` already turned into the 28x28 input."""
        if preprocessed.is_empty:
            return Prediction(preprocessed, np.zeros(len(self.class_names), np.float32), self.class_names)
        probabilities = self.probabilities(preprocessed.image * 255.0)[0]
        return Prediction(preprocessed, probabilities, self.class_names)


class LoadedModel:
    """A model loaded once for inference and shared, read-only, by every session of the server.

    Predictions go through one compiled forward pass (thread-safe); the feature
    extractor of the Convolutions page is built on first use.
    """

    def __init__(self, model, normalization: str = "divide_255", class_names: tuple[str, ...] | None = None):
        self.model = model
        self.predictor = Predictor(model, normalization, class_names)
        self.normalization = normalization
        self.class_names = self.predictor.class_names
        self._extractor = None
        self._extractor_problem: str | None = None
        self._inspector = None
        self._lock = threading.Lock()

    def feature_extractor(self):
        """The model's FeatureExtractor, or None for a model without convolutions."""
        from mnistlab.convolutions import FeatureExtractor

        with self._lock:
            if self._extractor is None and self._extractor_problem is None:
                try:
                    self._extractor = FeatureExtractor(self.model)
                except ValueError as problem:
                    self._extractor_problem = str(problem)
            return self._extractor

    def inspector(self):
        """The model's `mnistlab.explain.Inspector` (why it answered, how to fool it), built on first use."""
        from mnistlab.explain import Inspector

        with self._lock:
            if self._inspector is None:
                self._inspector = Inspector(self.model, self.normalization)
            return self._inspector


def load_for_inference(path, normalization: str = "divide_255", class_names: tuple[str, ...] | None = None) -> LoadedModel:
    """Load a .keras file (safe mode, shape checked) and trace its forward pass once."""
    from mnistlab.store import load_model_file

    loaded = LoadedModel(load_model_file(path), normalization, class_names)
    # The first call traces the compiled function; do it now, not in a student's first drawing.
    loaded.predictor.probabilities(np.zeros((1, 28, 28), np.float32))
    return loaded
