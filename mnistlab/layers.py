"""Batch normalisation that trains on TensorFlow's fused kernel, and a way back to plain Keras.

Keras 3 normalises a training batch with separate operations (mean, variance, subtract,
scale, shift), each with its own gradient. TensorFlow has one fused kernel for the whole
thing and for its gradient, which Keras 2 used by default. On this 2-core CPU the fused
kernel makes a training epoch of the CNN presets about 30% shorter (docs/PERFORMANCE.md),
with the same result: Keras' slow batch normalisation is a known issue
(keras-team/keras-core#225).

`FusedBatchNormalization` is Keras' `BatchNormalization` with only the training
computation swapped. At prediction time, and in any case the fused kernel does not cover,
it is Keras' layer unchanged. `portable_model` turns it back into a plain
`BatchNormalization` before a model is saved, so a downloaded .keras file loads anywhere
Keras does, without this module.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="mnistlab")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization`, trained with TensorFlow's fused kernel when it can be."""

    def _can_fuse(self, inputs, training, mask) -> bool:
        # The fused kernel normalises the channels of NHWC images in float32 (or bfloat16, with float32 statistics).
        return (
            bool(training)
            and self.trainable
            and mask is None
            and keras.backend.backend() == "tensorflow"
            and len(inputs.shape) == 4
            and self.axis in (3, -1)
            and keras.backend.standardize_dtype(inputs.dtype) in ("float32", "bfloat16")
            and self.center
            and self.scale
            and not self.renorm
            and not self.synchronized
        )

    def call(self, inputs, training=None, mask=None):
        if not self._can_fuse(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            scale=tf.convert_to_tensor(self.gamma),
            offset=tf.convert_to_tensor(self.beta),
            epsilon=self.epsilon,
            data_format="NHWC",
            is_training=True,
        )
        # The fused kernel returns the unbiased variance (divided by n - 1); Keras keeps the
        # moving average of the biased one (divided by n), so convert to match it exactly.
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), variance.dtype)
        variance = variance * (count - 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs


def _float32_config(layer) -> dict:
    config = layer.get_config()
    if "dtype" in config:
        config["dtype"] = "float32"
    return config


def portable_model(model):
    """The same model with plain Keras layers only, computing in float32 (same weights), ready to save or share.

    Returns the model itself when it has no `FusedBatchNormalization` and no layer computing in another format.
    """
    layers = list(model._flatten_layers(include_self=False))
    fused = any(isinstance(layer, FusedBatchNormalization) for layer in layers)
    mixed = any(getattr(getattr(layer, "dtype_policy", None), "name", "float32") != "float32" for layer in layers)
    if not fused and not mixed:
        return model

    def plain_layer(layer):
        if isinstance(layer, FusedBatchNormalization):
            return keras.layers.BatchNormalization.from_config(_float32_config(layer))
        return layer.__class__.from_config(_float32_config(layer))

    copy = keras.models.clone_model(model, clone_function=plain_layer)
    copy.set_weights(model.get_weights())
    return copy
