"""The generic likelihood maths every head and scorer shares: log p of observed sub-pixels from
logits, bits per dimension, per-level probabilities, and the training loss `NegativeLogLikelihood`
(bits per dimension of the categorical head). Below the heads and the scorers, so both import it."""

import math

import keras
import numpy as np
from keras import ops


def log_prob_per_channel_from_logits(logits, images):
    """log p(x_i | x_<i) in nats of every sub-pixel, shape (batch, H, W, C), from logits of
    `build_model` and int images; their sum over (H, W, C) is `log_prob_from_logits`.

    Args:
        logits: (batch, H, W, C, L) softmax logits, or (batch, H, W, C) Bernoulli logits.
        images: (batch, H, W, C) integer pixel values.
    """
    if len(logits.shape) == 5:
        log_probs = ops.log_softmax(logits, axis=-1)
        one_hot = ops.one_hot(ops.cast(images, "int32"), logits.shape[-1], dtype=log_probs.dtype)
        return ops.sum(log_probs * one_hot, axis=-1)
    bits = ops.cast(images, logits.dtype)
    return bits * logits - ops.softplus(logits)  # log sigmoid(+-logits)


def probabilities_from_logits(logits, binary):
    """Per-level probabilities (..., levels) of the model's output: the softmax of (..., L) logits
    (or of a mixture head's normalised log-probabilities), or for `binary` (2 levels) Bernoulli
    logits (...) [p(0), p(1)] = [sigmoid(-l), sigmoid(l)] (both tails exact). The one conversion
    of the sampler's draws and the codec's coding tables."""
    if binary:
        return ops.stack([ops.sigmoid(-logits), ops.sigmoid(logits)], axis=-1)
    return ops.softmax(logits, axis=-1)


def log_prob_from_logits(logits, images):
    """log p(image) in nats, shape (batch,), from logits of `build_model` and int images (the sum
    of `log_prob_per_channel_from_logits`)."""
    return ops.sum(log_prob_per_channel_from_logits(logits, images), axis=(1, 2, 3))


def bits_per_dim_from_nats(nats, image_shape):
    """Convert negative log-likelihood in nats per image into bits per dimension."""
    return nats / (float(np.prod(image_shape)) * math.log(2.0))


@keras.saving.register_keras_serializable(package="pixel_keras")
class NegativeLogLikelihood(keras.losses.Loss):
    """Training loss: negative log-likelihood in bits per dimension, averaged over the batch.

    Use with `model.fit(x=images, y=images)`: `y_true` are the integer images, `y_pred` the logits.
    Bits per dimension keep the scale (and a good learning rate) independent of the image size.
    """

    def __init__(self, name="nll_bits_per_dim", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return nll_bits_per_dim(y_true, y_pred)


def targets_in_range(values, num_levels):
    """Per image (axis 0), whether every value is an integer in [0, num_levels); NaN never is."""
    integer = ops.equal(values, ops.round(values))
    in_range = ops.logical_and(ops.greater_equal(values, 0.0), ops.less_equal(values, num_levels - 1.0))
    return ops.all(ops.logical_and(integer, in_range), axis=tuple(range(1, len(values.shape))))


@keras.saving.register_keras_serializable(package="pixel_keras")
def nll_nats_per_image(y_true, y_pred):
    """Per-image negative log-likelihood in nats from integer images and logits.

    NaN for an image with any target outside [0, num_levels) or not an integer: the one-hot of such
    a value is empty (loss 0) and a Bernoulli target of 255 gives a negative loss, so a finite number
    would be wrong. NaN is computed in the graph (asserts vanish under XLA), and TerminateOnNaN stops.
    """
    num_levels = 2 if len(y_pred.shape) == 4 else y_pred.shape[-1]
    values = ops.cast(y_true, "float32")
    nats = -log_prob_from_logits(y_pred, ops.cast(ops.round(values), "int32"))
    return ops.where(targets_in_range(values, num_levels), nats, float("nan"))


@keras.saving.register_keras_serializable(package="pixel_keras")
def nll_bits_per_dim(y_true, y_pred):
    """Per-image negative log-likelihood in bits per dimension from integer images and logits."""
    return bits_per_dim_from_nats(nll_nats_per_image(y_true, y_pred), y_pred.shape[1:4])
