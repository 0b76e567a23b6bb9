"""Sampling and image completion: one compiled `tf.function` loop over pixels and channels.

Pixels are drawn in raster order and, inside a pixel, channel by channel (R, G, B), each from the
model's conditional given everything drawn or known before it. The loop is a `tf.while_loop`
inside a `tf.function` with a fixed input signature (traced once per model, any batch size),
XLA-compiled on request, with stateless random ops so that a seed fixes the result.
"""

import weakref

import numpy as np
import tensorflow as tf

from pixel_keras.likelihood import check_images, model_spec
from pixel_keras.xla import default_jit_compile


class Sampler:
    """Draws and completes images for one model; `fill` is the compiled loop that all entry points
    (the Python API, the TensorBoard galleries, the SavedModel signatures) share.

    Args:
        model: a model from `build_model`.
        jit_compile: compile the loop with XLA; default: where a GPU is present.
    """

    def __init__(self, model, jit_compile=None):
        jit_compile = default_jit_compile() if jit_compile is None else jit_compile
        self.model = model
        self.image_shape, self.num_levels = model_spec(model)
        signature = [
            tf.TensorSpec((None,) + self.image_shape, tf.int32, name="images"),
            tf.TensorSpec((None,) + self.image_shape, tf.bool, name="known_mask"),
            tf.TensorSpec((), tf.int64, name="seed"),
            tf.TensorSpec((), tf.float32, name="temperature"),
        ]
        self.fill = tf.function(self._fill, input_signature=signature, jit_compile=jit_compile)

    def _draw(self, logits, seed, temperature):
        """One value per image from logits (batch, levels) or Bernoulli logits (batch,)."""
        if self.num_levels == 2:
            uniform = tf.random.stateless_uniform(tf.shape(logits), seed)
            return tf.cast(uniform < tf.sigmoid(logits / temperature), tf.int32)
        return tf.cast(tf.random.stateless_categorical(logits / temperature, 1, seed)[:, 0], tf.int32)

    def _fill(self, images, known_mask, seed, temperature):
        """Replace every pixel value where `known_mask` is False by a draw from the model."""
        height, width, channels = self.image_shape
        size = height * width * channels
        base_seed = tf.stack([seed, tf.constant(0, tf.int64)])

        def body(index, images):
            row, col, channel = index // (width * channels), index // channels % width, index % channels
            known = known_mask[:, row, col, channel]

            def draw():
                logits = self.model(images, training=False)[:, row, col, channel]
                step_seed = tf.random.experimental.stateless_fold_in(base_seed, index)
                return tf.where(known, images[:, row, col, channel], self._draw(logits, step_seed, temperature))

            values = tf.cond(tf.reduce_all(known), lambda: images[:, row, col, channel], draw)
            at_index = tf.reshape(tf.one_hot(index, size, on_value=True, off_value=False), self.image_shape)
            return index + 1, tf.where(at_index, values[:, None, None, None], images)

        _, images = tf.while_loop(lambda index, _: index < size, body, (tf.constant(0), images),
                                  maximum_iterations=size)
        return images

    def sample(self, num_images, seed=0, temperature=1.0):
        """`num_images` new images, int32 (num_images, H, W, C)."""
        if not isinstance(num_images, (int, np.integer)) or num_images < 0:
            raise ValueError(f"Expected a non-negative integer num_images. Received num_images={num_images!r}.")
        shape = (int(num_images),) + self.image_shape
        return self._run(np.zeros(shape, np.int32), np.zeros(shape, bool), seed, temperature)

    def complete(self, images, known_mask, seed=0, temperature=1.0):
        """`images` with every pixel value where `known_mask` is False drawn from the model.

        Args:
            images: integer images (batch, H, W, C); values where the mask is False are ignored.
            known_mask: boolean, shape (batch, H, W, C), (batch, H, W) or (H, W) (broadcast).
        """
        images = check_images(images, self.image_shape, self.num_levels)
        known_mask = np.asarray(known_mask)
        if known_mask.dtype != np.bool_:
            raise ValueError(f"Expected a boolean known_mask. Received dtype {known_mask.dtype}.")
        if known_mask.shape == self.image_shape[:2] or known_mask.shape == images.shape[:3]:
            known_mask = known_mask[..., None]
        try:
            known_mask = np.broadcast_to(known_mask, images.shape)
        except ValueError:
            raise ValueError(
                f"Expected known_mask of shape {images.shape}, {images.shape[:3]} or {self.image_shape[:2]}. "
                f"Received shape {known_mask.shape}."
            ) from None
        return self._run(images, known_mask, seed, temperature)

    def _run(self, images, known_mask, seed, temperature):
        if not temperature > 0:
            raise ValueError(f"Expected a positive temperature. Received temperature={temperature!r}.")
        return self.fill(tf.constant(images, tf.int32), tf.constant(known_mask, tf.bool),
                         tf.constant(int(seed), tf.int64), tf.constant(float(temperature), tf.float32)).numpy()


_SAMPLERS = weakref.WeakKeyDictionary()


def _sampler(model):
    """The model's cached `Sampler`, so repeated calls reuse one traced loop."""
    if model not in _SAMPLERS:
        _SAMPLERS[model] = Sampler(model)
    return _SAMPLERS[model]


def sample(model, num_images, seed=0, temperature=1.0):
    """Draw `num_images` images from `model`; int32 array (num_images, H, W, C)."""
    return _sampler(model).sample(num_images, seed, temperature)


def complete(model, images, known_mask, seed=0, temperature=1.0):
    """Fill in the pixels of `images` where `known_mask` is False; int32 array like `images`."""
    return _sampler(model).complete(images, known_mask, seed, temperature)
