"""Exact discrete log-likelihoods: nats per image, bits per dimension, and the training loss."""

import math

import keras
import numpy as np
from keras import ops


def model_spec(model):
    """(image_shape, num_levels) of a model from `build_model`, read off its input and output."""
    image_shape = tuple(model.input_shape[1:])
    output_rank = len(model.output_shape)
    num_levels = 2 if output_rank == 4 else model.output_shape[-1]
    return image_shape, num_levels


def check_images(images, image_shape, num_levels):
    """Return `images` as int32 after checking dtype, rank, shape and value range.

    Raises:
        ValueError: naming the problem, for float or non-numeric images, the wrong rank or shape,
            or values outside [0, num_levels).
    """
    array = np.asarray(images)
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise ValueError(
            f"Expected integer pixel values in [0, {num_levels}). Received images of dtype {array.dtype}; "
            "convert with e.g. images.astype('uint8') (do not rescale to [0, 1])."
        )
    if array.ndim != 4:
        raise ValueError(
            f"Expected images of rank 4 (batch, height, width, channels). Received shape {array.shape}."
        )
    if array.shape[1:] != tuple(image_shape):
        raise ValueError(
            f"Expected images of shape (batch, {', '.join(map(str, image_shape))}). "
            f"Received shape {array.shape}."
        )
    if array.size and (array.min() < 0 or array.max() >= num_levels):
        raise ValueError(
            f"Expected pixel values in [0, {num_levels - 1}]. "
            f"Received values in [{array.min()}, {array.max()}]."
        )
    return array.astype(np.int32)


def log_prob_from_logits(logits, images):
    """log p(image) in nats, shape (batch,), from logits of `build_model` and int images.

    Args:
        logits: (batch, H, W, C, L) softmax logits, or (batch, H, W, C) Bernoulli logits.
        images: (batch, H, W, C) integer pixel values.
    """
    if len(logits.shape) == 5:
        log_probs = ops.log_softmax(logits, axis=-1)
        one_hot = ops.one_hot(ops.cast(images, "int32"), logits.shape[-1], dtype=log_probs.dtype)
        per_channel = ops.sum(log_probs * one_hot, axis=-1)
    else:
        bits = ops.cast(images, logits.dtype)
        per_channel = bits * logits - ops.softplus(logits)  # log sigmoid(+-logits)
    return ops.sum(per_channel, axis=(1, 2, 3))


def bits_per_dim_from_nats(nats, image_shape):
    """Convert negative log-likelihood in nats per image into bits per dimension."""
    return nats / (float(np.prod(image_shape)) * math.log(2.0))


def log_prob(model, images, batch_size=256):
    """log p(image) in nats for each image, shape (batch,), as a numpy array.

    Args:
        model: a model from `build_model` (or one loaded from a .keras file).
        images: integer array (batch, H, W, C) with values in [0, num_levels).
        batch_size: images per forward pass.
    """
    image_shape, num_levels = model_spec(model)
    images = check_images(images, image_shape, num_levels)
    chunks = [
        ops.convert_to_numpy(log_prob_from_logits(model(images[start:start + batch_size], training=False),
                                                  images[start:start + batch_size]))
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(chunks) if chunks else np.zeros((0,), np.float32)


def bits_per_dim(model, images, batch_size=256):
    """Negative log-likelihood in bits per dimension for each image, shape (batch,)."""
    image_shape, _ = model_spec(model)
    return bits_per_dim_from_nats(-log_prob(model, images, batch_size), image_shape)


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


@keras.saving.register_keras_serializable(package="pixel_keras")
def nll_nats_per_image(y_true, y_pred):
    """Per-image negative log-likelihood in nats from integer images and logits."""
    return -log_prob_from_logits(y_pred, ops.cast(ops.round(y_true), "int32"))


@keras.saving.register_keras_serializable(package="pixel_keras")
def nll_bits_per_dim(y_true, y_pred):
    """Per-image negative log-likelihood in bits per dimension from integer images and logits."""
    return bits_per_dim_from_nats(nll_nats_per_image(y_true, y_pred), y_pred.shape[1:4])
