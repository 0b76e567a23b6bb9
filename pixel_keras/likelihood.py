"""Exact discrete log-likelihoods: nats per image, bits per dimension, and the training loss."""

import math
import weakref

import keras
import numpy as np
from keras import ops

from pixel_keras.backend import model_function
from pixel_keras.checks import check_batch_size
from pixel_keras.inspection import all_layers, model_spec, num_classes_of  # noqa: F401  (where they always were)
from pixel_keras.views import observed_view


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


def check_labels(labels, num_classes, batch):
    """Return `labels` as int32 after checking them against a model's `num_classes` (None:
    unconditional) and the batch size.

    Raises:
        ValueError: for labels given to an unconditional model, none given to a conditional one,
            non-integer labels, a shape other than (batch,), or values outside [0, num_classes).
    """
    if num_classes is None:
        if labels is not None:
            raise ValueError(f"This model is unconditional: it takes no labels. Received labels={labels!r}.")
        return None
    if labels is None:
        raise ValueError(
            f"This model is class-conditional: pass labels=, ints in [0, {num_classes}), shape ({batch},)."
        )
    array = np.asarray(labels)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"Expected integer labels in [0, {num_classes}). Received labels of dtype {array.dtype}.")
    if array.shape != (batch,):
        raise ValueError(f"Expected labels of shape ({batch},), one per image. Received shape {array.shape}.")
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(
            f"Expected labels in [0, {num_classes - 1}]. Received values in [{array.min()}, {array.max()}]."
        )
    return array.astype(np.int32)


_SCORERS = weakref.WeakKeyDictionary()


def _scorer(model, image_shape, conditional, per_pixel=False):
    """The model's compiled (images[, labels]) -> log p, made once per model and output kind
    (`model_function`: a tf.function traced once for any batch size on TensorFlow, jax.jit on JAX),
    so that repeated scoring does not run the network op by op. Every head is scored through its
    `views.observed_view`, observed level only (a logistic mixture: K logistics per sub-pixel
    instead of K x num_levels; the SavedModel scores the same way). `per_pixel`: the (batch, H, W, C) terms whose sum the plain scorer returns."""
    scorers = _SCORERS.setdefault(model, {})
    if per_pixel not in scorers:
        weak_model = weakref.ref(model)  # the cache must not keep its key alive
        observed = observed_view(model)  # the head's observed-level path (the mixture: its parameters)
        # The model through a weak reference; a separate view (sharing its layers) held as it is.
        network = weak_model if observed.model is model else (lambda view=observed.model: view)
        log_probs = observed.log_probs
        del observed

        def score(images, labels=None):
            inputs = images if labels is None else [images, labels]
            terms = log_probs(network()(inputs, training=False), images)
            return terms if per_pixel else ops.sum(terms, axis=(1, 2, 3))

        signature = [((None,) + tuple(image_shape), "int32", "images")] + [((None,), "int32", "labels")] * conditional
        scorers[per_pixel] = model_function(model, score, signature)
    return scorers[per_pixel]


def log_prob(model, images, batch_size=256, *, labels=None, per_pixel=False):
    """log p(image) in nats (log p(image | label) for a conditional model) for each image, shape
    (batch,), as a numpy array.

    Args:
        model: a model from `build_model` (or one loaded from a .keras file).
        images: integer array (batch, H, W, C) with values in [0, num_levels).
        batch_size: images per forward pass.
        labels: class-conditional models only (and required there): ints (batch,) in [0, K).
        per_pixel: return instead the (batch, H, W, C) terms log p(x_i | x_<i) of every sub-pixel
            (float32 nats; their sum over H, W, C is the per-image figure): where in an image the
            model is surprised (`pixel_keras.gallery.surprise_grid` draws them).
    """
    batch_size = check_batch_size(batch_size)
    image_shape, num_levels = model_spec(model)
    images = check_images(images, image_shape, num_levels)
    labels = check_labels(labels, num_classes_of(model), len(images))
    if not isinstance(per_pixel, bool):
        raise ValueError(f"Expected per_pixel to be True or False. Received per_pixel={per_pixel!r}.")
    score = _scorer(model, image_shape, labels is not None, per_pixel)
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = [images[start:start + batch_size]] + ([] if labels is None else [labels[start:start + batch_size]])
        chunks.append(ops.convert_to_numpy(score(*batch)))
    empty = (0,) + (tuple(image_shape) if per_pixel else ())
    return np.concatenate(chunks) if chunks else np.zeros(empty, np.float32)


def bits_per_dim(model, images, batch_size=256, *, labels=None):
    """Negative log-likelihood in bits per dimension for each image, shape (batch,); `labels` as
    in `log_prob`."""
    image_shape, _ = model_spec(model)
    return bits_per_dim_from_nats(-log_prob(model, images, batch_size, labels=labels), image_shape)


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
