"""Inside the answer: why a network answered, how it can be fooled, where an image sits among others, what it
imagines, and what breaks when parts of it are switched off.

Everything works on a trained model and a student's own 28x28 drawing (pixels 0..1, ink
bright, as `mnistlab.preprocessing` makes it), with no Streamlit:

- `Inspector.saliency`: a heat map of the pixels that pushed the network towards an
  answer. Grad-CAM on the last convolution for a CNN (the convolution's maps weighted by
  how much the answer's score rises with each, summed, kept where positive, scaled up to
  28x28 and masked by where the image has something); gradient x input for a dense
  network. For the top answer or any digit ("why not 3?").
- `Inspector.fool`: the smallest change within an L-infinity budget (every pixel moves
  at most that much) that makes the network answer a chosen digit: projected gradient
  steps, tried with growing budgets up to the student's. `Inspector.fool_few_pixels`
  changes only a few pixels, each all the way to black or white, the most useful first.
- `Inspector.embedding` and `map_2d`: the last hidden layer's numbers for test images,
  laid out in 2-D (PCA at once, t-SNE with scikit-learn on request); a drawing is placed
  by the same projection (PCA) or among its nearest test images (t-SNE).
- `Inspector.imagine`: the input that excites a class (or one filter of a convolution)
  most: gradient ascent from grey, blurred a little at each step so the picture stays
  smooth ("what the network thinks a 3 looks like").
- `Broken`: a copy of the model with chosen filters or units switched off, or noise added
  to the weights; `reset` puts every weight back exactly.

The model is never changed: pages share one loaded copy among sessions.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from mnistlab.datasets import normalize_images

GREY = 0.5


@dataclass(frozen=True, eq=False)
class FoolResult:
    """A fooled input: what was asked, how much changed, and what the network now says."""

    target: int
    reached: bool
    linf: float  # the largest change of any pixel (0..1)
    pixels_changed: int  # pixels that moved by at least one grey level of 255
    new_answer: int
    new_confidence: float
    image: np.ndarray  # the fooled input, 28x28, 0..1
    method: str  # "gradient steps" or "few pixels"
    original: np.ndarray  # the input before, 28x28, 0..1

    @property
    def change(self) -> np.ndarray:
        """The change, signed (what was added minus what was taken)."""
        return self.image - self.original

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "reached": self.reached,
            "linf": round(float(self.linf), 4),
            "pixels_changed": int(self.pixels_changed),
            "new_answer": int(self.new_answer),
            "new_confidence": round(float(self.new_confidence), 6),
            "method": self.method,
        }


def _layer_kind(layer) -> str:
    return type(layer).__name__


class Inspector:
    """A model's inside, read for one image at a time (thread-safe; compiled once per model)."""

    def __init__(self, model, normalization: str = "divide_255"):
        import keras
        import tensorflow as tf

        self.model = model
        self.normalization = normalization
        self._lock = threading.Lock()
        output = model.layers[-1]
        if _layer_kind(output) != "Dense":
            raise ValueError("This model does not end with a dense layer of 10 classes, so its answer cannot be explained here.")
        self._weights, self._bias = (tf.constant(value) for value in output.get_weights())
        self.features = keras.Model(model.input, output.input)  # the last hidden layer's numbers
        convolutions = [layer for layer in model.layers if _layer_kind(layer) == "Conv2D"]
        self.is_convolutional = bool(convolutions)
        self.conv_layers = [layer.name for layer in convolutions]
        if convolutions:
            last = convolutions[-1]
            # Grad-CAM reads the last convolution's maps after their activation (after batch normalisation if any).
            index = model.layers.index(last)
            after = model.layers[index + 1 : index + 3]
            maps_layer = next((layer for layer in after if _layer_kind(layer) == "Activation"), last)
            self._maps = keras.Model(model.input, [maps_layer.output, output.input])
        spec = [tf.TensorSpec(shape=(None, 28, 28), dtype=tf.float32)]

        def logits(features):
            return tf.matmul(features, self._weights) + self._bias

        @tf.function(input_signature=[*spec, tf.TensorSpec(shape=(), dtype=tf.int32)])
        def input_gradient(images, target):
            with tf.GradientTape() as tape:
                tape.watch(images)
                score = logits(self.features(images, training=False))[:, target]
            return tape.gradient(score, images), score

        @tf.function(input_signature=[*spec, tf.TensorSpec(shape=(), dtype=tf.int32)])
        def loss_gradient(images, target):
            with tf.GradientTape() as tape:
                tape.watch(images)
                scores = logits(self.features(images, training=False))
                loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.fill([tf.shape(images)[0]], target), logits=scores))
            return tape.gradient(loss, images), tf.nn.softmax(scores)

        @tf.function(input_signature=spec)
        def probabilities(images):
            return tf.nn.softmax(logits(self.features(images, training=False)))

        self._input_gradient = input_gradient
        self._loss_gradient = loss_gradient
        self._probabilities = probabilities
        if convolutions:

            @tf.function(input_signature=[*spec, tf.TensorSpec(shape=(), dtype=tf.int32)])
            def grad_cam(images, target):
                with tf.GradientTape() as tape:
                    maps, features = self._maps(images, training=False)
                    score = logits(features)[:, target]
                gradients = tape.gradient(score, maps)
                weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
                return tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1))

            self._grad_cam = grad_cam

    # Reading the answer

    def _input(self, images01: np.ndarray) -> np.ndarray:
        images01 = np.asarray(images01, np.float32)
        if images01.ndim == 2:
            images01 = images01[None]
        if images01.shape[1:] != (28, 28):
            raise ValueError(f"The network takes 28x28 images, not {images01.shape[1:]}.")
        return normalize_images(images01 * 255.0, self.normalization)

    def probabilities(self, images01: np.ndarray) -> np.ndarray:
        """Class probabilities for images of 0..1 pixels, shape (N, 10)."""
        return self._probabilities(self._input(images01)).numpy()

    def saliency(self, image01: np.ndarray, target: int | None = None) -> np.ndarray:
        """Which pixels pushed the network towards `target` (default: its answer): a 28x28 map from 0 to 1."""
        image01 = np.asarray(image01, np.float32)
        if target is None:
            target = int(np.argmax(self.probabilities(image01)[0]))
        if not 0 <= int(target) <= 9:
            raise ValueError(f"A class is a digit from 0 to 9, not {target}.")
        x = self._input(image01)
        if self.is_convolutional:
            cam = self._grad_cam(x, np.int32(target)).numpy()[0]
            heat = _resize(cam, 28).copy()
            # A convolution's map is coarse: keep the heat where the image has something, and a little around it.
            heat *= _dilate(image01 > 0.1, 2) * 0.8 + 0.2
        else:
            gradient, _score = self._input_gradient(x, np.int32(target))
            heat = np.maximum(gradient.numpy()[0] * x[0], 0.0)
        peak = float(heat.max())
        return (heat / peak).astype(np.float32) if peak > 0 else np.zeros((28, 28), np.float32)

    # Fooling it

    def fool(self, image01: np.ndarray, target: int, budget: float = 0.3, steps: int = 40) -> FoolResult:
        """The smallest change of at most `budget` per pixel (tried with growing budgets) that makes the answer `target`."""
        if not 0 < budget <= 1:
            raise ValueError(f"The budget is how much any pixel may change, from 0 to 1 (0.3 is 30%), not {budget}.")
        target = _digit(target)
        original = np.asarray(image01, np.float32)
        best = None
        for fraction in (0.125, 0.25, 0.5, 0.75, 1.0):
            epsilon = budget * fraction
            fooled = self._projected_steps(original, target, epsilon, steps)
            result = self._result(original, fooled, target, "gradient steps")
            best = result
            if result.reached:
                break
        return best

    def _projected_steps(self, original: np.ndarray, target: int, epsilon: float, steps: int) -> np.ndarray:
        step = max(epsilon / 8, 1 / 255)
        current = original.copy()
        for _step in range(steps):
            gradient, probabilities = self._loss_gradient(self._input(current), np.int32(target))
            if int(np.argmax(probabilities.numpy()[0])) == target:
                break
            # The gradient is of the normalised input; its sign is the same for the 0..1 pixels.
            current = current - step * np.sign(gradient.numpy()[0])
            current = np.clip(np.clip(current, original - epsilon, original + epsilon), 0.0, 1.0).astype(np.float32)
        return current

    def fool_few_pixels(self, image01: np.ndarray, target: int, most: int = 30) -> FoolResult:
        """Change at most `most` pixels, each all the way to white or black, the one that helps `target` most first."""
        target = _digit(target)
        original = np.asarray(image01, np.float32)
        current = original.copy()
        used = np.zeros((28, 28), bool)
        for _pixel in range(most):
            gradient, probabilities = self._loss_gradient(self._input(current), np.int32(target))
            if int(np.argmax(probabilities.numpy()[0])) == target:
                break
            # Moving a pixel against the loss's gradient helps: towards white where it is negative, black where positive.
            gradient = gradient.numpy()[0]
            goal = np.where(gradient < 0, 1.0, 0.0)
            gain = np.abs(gradient) * np.abs(goal - current)
            gain[used] = -1.0
            row, column = np.unravel_index(int(np.argmax(gain)), gain.shape)
            current[row, column] = goal[row, column]
            used[row, column] = True
        return self._result(original, current, target, "few pixels")

    def _result(self, original: np.ndarray, fooled: np.ndarray, target: int, method: str) -> FoolResult:
        probabilities = self.probabilities(fooled)[0]
        answer = int(np.argmax(probabilities))
        difference = np.abs(fooled - original)
        result = FoolResult(
            target=target,
            reached=answer == target,
            linf=float(difference.max()),
            pixels_changed=int((difference >= 1 / 255).sum()),
            new_answer=answer,
            new_confidence=float(probabilities[answer]),
            image=fooled.astype(np.float32),
            method=method,
            original=original,
        )
        return result

    # Where it sits among others

    def embedding(self, images01: np.ndarray, batch: int = 256) -> np.ndarray:
        """The last hidden layer's numbers for images of 0..1 pixels, shape (N, units)."""
        images01 = np.asarray(images01, np.float32)
        parts = [self.features(self._input(images01[start : start + batch]), training=False).numpy() for start in range(0, len(images01), batch)]
        return np.concatenate(parts) if parts else np.zeros((0, self.features.output.shape[-1]), np.float32)

    # What it imagines

    def imagine(self, target: int, steps: int = 150, filter_of: tuple[str, int] | None = None, seed: int = 0) -> np.ndarray:
        """The 28x28 input (0..1) that excites class `target` most, or, with `filter_of=(layer, index)`, that filter.

        Gradient ascent from grey on the class's log-probability (its score against the nine others), with a
        smoothness prior: every few steps the picture is blurred a little, and at every step it fades a little
        towards black, so what is left is what the class needs, not noise."""
        import tensorflow as tf
        from scipy.ndimage import gaussian_filter

        generator = np.random.default_rng(seed)
        image = np.full((28, 28), GREY, np.float32) + generator.normal(0, 0.01, (28, 28)).astype(np.float32)
        step = self._imagine_step(filter_of[0] if filter_of else None)
        index = np.int32(filter_of[1] if filter_of else _digit(target))
        for number in range(steps):
            gradient = step(tf.convert_to_tensor(self._input(image)), index).numpy()[0]
            gradient /= float(np.abs(gradient).max()) + 1e-8
            image = np.clip((image + 0.05 * gradient) * 0.98, 0.0, 1.0)
            if number % 4 == 0:
                image = 0.5 * gaussian_filter(image, sigma=0.6) + 0.5 * image
        return image.astype(np.float32)

    def _imagine_step(self, layer: str | None):
        """The compiled gradient of a class's score (or a filter's mean activation) with respect to the input."""
        import keras
        import tensorflow as tf

        with self._lock:
            cache = self.__dict__.setdefault("_imagine_steps", {})
            if layer in cache:
                return cache[layer]
            if layer is None:

                def score_of(x, index):
                    scores = tf.matmul(self.features(x, training=False), self._weights) + self._bias
                    return scores[0, index] - tf.reduce_logsumexp(scores[0])
            else:
                probe = keras.Model(self.model.input, self.model.get_layer(layer).output)

                def score_of(x, index):
                    return tf.reduce_mean(tf.gather(probe(x, training=False), index, axis=-1))

            @tf.function(input_signature=[tf.TensorSpec(shape=(1, 28, 28), dtype=tf.float32), tf.TensorSpec(shape=(), dtype=tf.int32)])
            def step(x, index):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    score = score_of(x, index)
                return tape.gradient(score, x)

            cache[layer] = step
            return step


def _digit(value) -> int:
    try:
        digit = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"The target is a class number from 0 to 9, not {value!r}.") from None
    if not 0 <= digit <= 9:
        raise ValueError(f"The target is a class number from 0 to 9, not {digit}.")
    return digit


def _resize(values: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    resized = Image.fromarray(np.asarray(values, np.float32), mode="F").resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, np.float32)


def _dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    from scipy.ndimage import binary_dilation

    return binary_dilation(mask, iterations=pixels).astype(np.float32)


def near_ink(saliency: np.ndarray, image01: np.ndarray, pixels: int = 2) -> float:
    """The share of a saliency map that lies on the ink or within `pixels` of it."""
    total = float(saliency.sum())
    return float((saliency * _dilate(np.asarray(image01) > 0.1, pixels)).sum()) / total if total > 0 else 0.0


# Where it sits among test images


@dataclass(frozen=True, eq=False)
class Map2D:
    """Test images laid out in 2-D by what the network's last hidden layer makes of them."""

    method: str  # "pca" or "tsne"
    points: np.ndarray  # (N, 2)
    labels: np.ndarray
    predicted: np.ndarray
    embeddings: np.ndarray  # (N, units), to place a new image
    mean: np.ndarray | None = None
    components: np.ndarray | None = None  # PCA's two axes

    def place(self, embedding: np.ndarray) -> np.ndarray:
        """Where an image with this embedding goes on the map."""
        embedding = np.asarray(embedding, np.float32).reshape(-1)
        if self.method == "pca":
            return (embedding - self.mean) @ self.components.T
        distances = np.linalg.norm(self.embeddings - embedding, axis=1)
        nearest = np.argsort(distances)[:5]
        return self.points[nearest].mean(axis=0)


def map_2d(inspector: Inspector, images01: np.ndarray, labels: np.ndarray, method: str = "pca", seed: int = 0) -> Map2D:
    """Lay test images out in 2-D: PCA at once, or t-SNE (scikit-learn, a few tens of seconds for 2,000 images)."""
    embeddings = inspector.embedding(images01)
    predicted = np.argmax(inspector.probabilities(images01), axis=1)
    mean = embeddings.mean(axis=0)
    centred = embeddings - mean
    _u, _s, axes = np.linalg.svd(centred, full_matrices=False)
    components = axes[:2]
    if method == "pca":
        return Map2D("pca", centred @ components.T, np.asarray(labels), predicted, embeddings, mean, components)
    if method != "tsne":
        raise ValueError(f"A map is made with 'pca' or 'tsne', not {method!r}.")
    from sklearn.manifold import TSNE

    points = TSNE(n_components=2, init="pca", perplexity=30, random_state=seed, n_jobs=2).fit_transform(embeddings)
    return Map2D("tsne", points.astype(np.float32), np.asarray(labels), predicted, embeddings)


# Break it


class Broken:
    """A private copy of a model to break: filters or units switched off, noise on the weights; `reset` undoes all."""

    def __init__(self, model, normalization: str = "divide_255"):
        import keras

        self.original = [weights.copy() for weights in model.get_weights()]
        self.model = keras.models.clone_model(model)
        self.model.set_weights(self.original)
        self.normalization = normalization
        self.switched_off: dict[str, set[int]] = {}
        self.noise = 0.0
        self._forward = None

    def layers(self) -> list[tuple[str, str, int]]:
        """(name, kind, how many filters or units) of the layers that can be switched off, input first."""
        found = []
        for layer in self.model.layers:
            if _layer_kind(layer) == "Conv2D":
                found.append((layer.name, "Conv2D", int(layer.filters)))
            elif _layer_kind(layer) == "Dense" and layer is not self.model.layers[-1]:
                found.append((layer.name, "Dense", int(layer.units)))
        return found

    def apply(self, switched_off: dict[str, list[int]] | None = None, noise: float = 0.0, seed: int = 0) -> None:
        """Start from the original weights, switch off these filters or units, and add noise of this size."""
        switched_off = {name: set(map(int, indices)) for name, indices in (switched_off or {}).items() if indices}
        weights = [array.copy() for array in self.original]
        position = 0
        generator = np.random.default_rng(seed)
        for layer in self.model.layers:
            count = len(layer.weights)
            if count and layer.name in switched_off:
                off = sorted(switched_off[layer.name])
                kernel = weights[position]
                kernel[..., off] = 0.0  # no filter or unit: its output is only its bias...
                if count > 1 and weights[position + 1].shape == (kernel.shape[-1],):
                    weights[position + 1][off] = 0.0  # ...and no bias: it gives 0
            position += count
        if noise > 0:
            weights = [array + generator.normal(0, noise, array.shape).astype(array.dtype) * (np.std(array) or 1.0) for array in weights]
        self.model.set_weights(weights)
        self.switched_off, self.noise = switched_off, noise

    def reset(self) -> None:
        self.model.set_weights(self.original)
        self.switched_off, self.noise = {}, 0.0

    def probabilities(self, images01: np.ndarray, batch: int = 500) -> np.ndarray:
        images01 = np.asarray(images01, np.float32)
        if images01.ndim == 2:
            images01 = images01[None]
        if self._forward is None:
            import tensorflow as tf

            self._forward = tf.function(
                lambda x: self.model(x, training=False), input_signature=[tf.TensorSpec(shape=(None, 28, 28), dtype=tf.float32)]
            )
        parts = [
            self._forward(normalize_images(images01[start : start + batch] * 255.0, self.normalization)).numpy()
            for start in range(0, len(images01), batch)
        ]
        return np.concatenate(parts)

    def accuracy(self, images01: np.ndarray, labels: np.ndarray) -> float:
        return float((np.argmax(self.probabilities(images01), axis=1) == np.asarray(labels)).mean())
