"""Scoring: exact discrete log-likelihoods of a model's images, nats per image or per sub-pixel, and
bits per dimension, through each head's observed-level view; and the checks of what is scored."""

import weakref

import numpy as np
from keras import ops

from pixel_keras import inspection, losses
from pixel_keras.backend import model_function
from pixel_keras.checks import check_batch_size
from pixel_keras.deprecation import moved, no_attribute
from pixel_keras.head_registry import observed_view

# Names that lived here before (CHANGELOG.md, "Deprecated"): -> their module now.
_MOVED = {**dict.fromkeys(("all_layers", "model_spec", "num_classes_of"), inspection),
          **dict.fromkeys(("NegativeLogLikelihood", "bits_per_dim_from_nats", "log_prob_from_logits",
                           "log_prob_per_channel_from_logits", "nll_bits_per_dim", "nll_nats_per_image",
                           "probabilities_from_logits", "targets_in_range"), losses)}


def __getattr__(name):
    if name in _MOVED:
        return moved(__name__, name, _MOVED[name])
    raise no_attribute(__name__, name)


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
    `head_registry.observed_view`, observed level only (a logistic mixture: K logistics per sub-pixel
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
    image_shape, num_levels = inspection.model_spec(model)
    images = check_images(images, image_shape, num_levels)
    labels = check_labels(labels, inspection.num_classes_of(model), len(images))
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
    image_shape, _ = inspection.model_spec(model)
    return losses.bits_per_dim_from_nats(-log_prob(model, images, batch_size, labels=labels), image_shape)
