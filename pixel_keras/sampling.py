"""Sampling and image completion: one compiled loop over pixels and channels, fast or plain.

Pixels are drawn in raster order and, inside a pixel, channel by channel (R, G, B), each from the
model's conditional given everything drawn or known before it. Each value is the inverse CDF of its
conditional (softmax over levels with temperature; Bernoulli for 2 levels) at one uniform number,
drawn from the seed for that image and sub-pixel (stateless). Two loops share that draw:

- "fast" (default): `pixel_keras.incremental` computes every layer only at the new position from
  per-layer caches; models with a layer it has no rule for fall back to "plain" (with a warning);
- "plain": the whole network on the whole image at every step, the reference.

A multi-scale model is drawn in two phases, the small image then the rest given it: "fast" runs
the small stage's and then the conditional stage's incremental loop in one function, "plain" the
whole model twice (`pixel_keras.multiscale`).

The two differ only where a uniform falls within float rounding of a CDF boundary. Either loop is
compiled once per model by `backend.model_function`: on TensorFlow a `tf.function` with a fixed
input signature (any batch size), XLA-compiled on request; `jax.jit` on JAX; eager on PyTorch.
"""

import warnings
import weakref

import numpy as np
from keras import ops

from pixel_keras.backend import model_function, seed_argument, uniform
from pixel_keras.checks import check_batch_size, check_seed
from pixel_keras.incremental import IncrementalModel
from pixel_keras.inspection import model_spec, num_classes_of
from pixel_keras.likelihood import check_images, check_labels
from pixel_keras.losses import probabilities_from_logits
from pixel_keras.layers.scales import put_small, small_positions
from pixel_keras.multiscale import multiscale_factor, stage_masks, stage_plan
from pixel_keras.xla import default_jit_compile

METHODS = ("fast", "plain")


def inverse_cdf(logits, uniform, temperature):
    """Values (batch,) int32: the smallest level whose CDF reaches `uniform`.

    Args:
        logits: (batch, levels) softmax logits, or (batch,) Bernoulli logits (levels 0, 1).
        uniform: (batch,) numbers in [0, 1).
        temperature: positive scalar dividing the logits.
    """
    probabilities = probabilities_from_logits(logits / temperature, binary=len(logits.shape) == 1)
    cdf = ops.cumsum(probabilities, axis=-1)  # binary: p(0) = sigmoid(-l / T) first, as the codec's
    below = ops.sum(ops.cast(cdf < uniform[:, None], "int32"), axis=-1)
    return ops.minimum(below, probabilities.shape[-1] - 1)  # a uniform above a rounded-down last CDF value


def batch_seed(seed, index):
    """Seed of the `index`-th batch drawn under `seed`: batch 0 keeps `seed` (so one `fill` call, the
    Python API and `training.sample` agree), later batches a 63-bit hash of both, so that seeds never
    share a batch (with `seed + index`, seed 1's first batch would be seed 0's second). The one
    seed scheme of the library, the sampling app and the Sampler's large requests."""
    if index == 0:
        return seed
    return int(np.random.SeedSequence([seed % 2**63, index]).generate_state(1, np.uint64)[0] >> 1)


_chunk_seed = batch_seed  # its name before it was public


class Sampler:
    """Draws and completes images for one model; `fill` is the compiled loop that all entry points
    (the Python API, the TensorBoard galleries, the SavedModel signatures) share.

    `fill(images, known_mask, seed, temperature)` (plus `labels`, int32 (batch,), for a
    class-conditional model) replaces every value where `known_mask` is False by a draw.

    Args:
        model: a model from `build_model`.
        jit_compile: compile the loop with XLA; default: where a GPU is present.
        method: "fast" (incremental, cached) or "plain" (the whole network at every step).
    """

    def __init__(self, model, jit_compile=None, method="fast"):
        if method not in METHODS:
            raise ValueError(f"Expected method to be one of {METHODS}. Received method={method!r}.")
        jit_compile = default_jit_compile() if jit_compile is None else jit_compile
        self.model = model
        self.image_shape, self.num_levels = model_spec(model)
        self.num_classes = num_classes_of(model)
        self.stage_masks = stage_masks(model, self.image_shape)  # two phases for a multi-scale model
        self.factor = multiscale_factor(model)
        self.incremental = None
        if method == "fast":
            try:
                self.incremental = self._incremental_stages()
            except NotImplementedError as error:
                warnings.warn(f"Fast sampling is not available for this model, using the plain loop: {error}")
                method = "plain"
        self.method = method
        signature = [((None,) + self.image_shape, "int32", "images"), ((None,) + self.image_shape, "bool", "known_mask"),
                     ((), "int64", "seed"), ((), "float32", "temperature")]  # seed: `backend.seed_argument`
        if self.num_classes is not None:
            signature.append(((None,), "int32", "labels"))
        self.fill = model_function(model, self._fill, signature, jit_compile)

    def _incremental_stages(self):
        """[(IncrementalModel, image shape)] of `multiscale.stage_plan`: the model's own, or for a
        multi-scale model the small stage's (small image) then the large image's model of the
        conditional stage (its conditioning map an input, from `self.map_network`)."""
        plan = stage_plan(self.model, self.image_shape)
        self.map_network = plan[-1].map_network
        return [(IncrementalModel(stage.model, stage.image_shape), stage.image_shape) for stage in plan]

    def _fill(self, images, known_mask, seed, temperature, labels=None):
        """Replace every pixel value where `known_mask` is False by a draw from the model."""
        draws = uniform(ops.shape(images), seed)  # [i, row, col, channel] decides image i's value there
        if self.method == "fast":
            return self._fast_fill(images, known_mask, draws, temperature, labels)[0]
        for stage_mask in self.stage_masks:  # a phase draws only what its mask leaves unknown
            known = known_mask if stage_mask is None else ops.logical_or(known_mask, stage_mask)
            images = self._plain_loop(images, known, draws, temperature, labels)
        return images

    def _fast_fill(self, images, known_mask, draws, temperature, labels, record=False):
        """The fast loop of each stage: a multi-scale model's small image `images[:, ::f, ::f]` is
        drawn by the small stage (with the large image's uniforms at its pixels), then the rest by
        the conditional stage, the small image known and its conditioning map computed once.
        Returns (images, logits of every draw or None), as `_fast_loop`."""
        context = {"labels": labels}
        if self.factor is None:
            (incremental, shape), = self.incremental
            return self._fast_loop(incremental, shape, images, known_mask, draws, temperature, context, record)
        (small_stage, small_shape), (conditional, _) = self.incremental
        f = self.factor
        small, small_logits = self._fast_loop(small_stage, small_shape, images[:, ::f, ::f], known_mask[:, ::f, ::f],
                                              draws[:, ::f, ::f], temperature, context, record)
        images = put_small(small, images, f)
        known_mask = ops.logical_or(known_mask, small_positions(self.image_shape, f)[None, :, :, None])
        images, logits = self._fast_loop(conditional, self.image_shape, images, known_mask, draws, temperature,
                                         {**context, "conditioning_map": self.map_network(small)}, record)
        return images, (put_small(small_logits, logits, f) if record else None)

    def _inputs(self, images, labels):
        return images if labels is None else [images, labels]

    def _plain_loop(self, images, known_mask, draws, temperature, labels):
        """The whole network at each step; skipped where every image knows the value."""
        height, width, channels = self.image_shape
        size = height * width * channels

        def body(index, images):
            row, col, channel = index // (width * channels), index // channels % width, index % channels
            known = known_mask[:, row, col, channel]

            def draw():
                logits = self.model(self._inputs(images, labels), training=False)[:, row, col, channel]
                values = inverse_cdf(logits, draws[:, row, col, channel], temperature)
                return ops.where(known, images[:, row, col, channel], values)

            values = ops.cond(ops.all(known), lambda: images[:, row, col, channel], draw)
            return index + 1, ops.slice_update(images, [0, row, col, channel], ops.reshape(values, (-1, 1, 1, 1)))

        _, images = ops.while_loop(lambda index, _: index < size, body, (ops.convert_to_tensor(0), images),
                                   maximum_iterations=size)
        return images

    def _fast_loop(self, incremental, image_shape, images, known_mask, draws, temperature, context, record=False):
        """Rows, then columns, then channels of `image_shape`; every layer of `incremental` computed
        only at the current pixel; `context`: its image-independent inputs by name (labels, ...).

        Returns (images, logits the draws used, (batch, H, W, C[, levels]), or None unless `record`)."""
        height, width, channels = image_shape
        batch = ops.shape(images)[0]
        states, fixed = incremental.start(batch, context=context)
        levels = () if self.num_levels == 2 else (self.num_levels,)
        record_shape = (batch, height, width, channels) + levels if record else (0,)
        recorded = ops.zeros(record_shape, "float32")

        def pixel_step(row, col, images, states, recorded):
            for channel in range(channels):
                pixel = ops.slice(images, [0, row, col, 0], [batch, 1, 1, channels])
                states, output = incremental.step(states, fixed, pixel, row, col)
                logits = ops.cast(output[:, 0, 0, channel], "float32")
                values = inverse_cdf(logits, draws[:, row, col, channel], temperature)
                values = ops.where(known_mask[:, row, col, channel], images[:, row, col, channel], values)
                images = ops.slice_update(images, [0, row, col, channel], ops.reshape(values, (-1, 1, 1, 1)))
                if record:
                    start = [0, row, col, channel] + [0] * len(levels)
                    recorded = ops.slice_update(recorded, start, ops.reshape(logits, (-1, 1, 1, 1) + levels))
            pixel = ops.slice(images, [0, row, col, 0], [batch, 1, 1, channels])
            return images, incremental.commit(states, fixed, pixel, row, col), recorded

        def row_step(row, images, states, recorded):
            def col_step(col, images, states, recorded):
                return (col + 1,) + pixel_step(row, col, images, states, recorded)

            _, images, states, recorded = ops.while_loop(
                lambda col, *_: col < width, col_step, (ops.convert_to_tensor(0), images, states, recorded),
                maximum_iterations=width)
            return row + 1, images, incremental.end_row(states, fixed, row), recorded

        _, images, _, recorded = ops.while_loop(
            lambda row, *_: row < height, row_step, (ops.convert_to_tensor(0), images, states, recorded),
            maximum_iterations=height)
        return images, (recorded if record else None)

    def fill_with_logits(self, images, known_mask, seed, temperature=1.0, labels=None):
        """The fast loop's result and the logits of every draw (for tests): numpy arrays."""
        if self.incremental is None:
            raise ValueError(f"fill_with_logits needs the fast method. This Sampler uses method={self.method!r}.")
        images = np.asarray(images, np.int32)
        labels = None if labels is None else np.asarray(labels, np.int32)
        if not hasattr(self, "_recording_loop"):
            self._recording_loop = model_function(self.model, lambda *args: self._fast_fill(*args, record=True))
        filled, logits = self._recording_loop(images, np.asarray(known_mask, bool), uniform(images.shape, seed),
                                              np.float32(temperature), labels)
        return ops.convert_to_numpy(filled), ops.convert_to_numpy(logits)

    def sample(self, num_images, seed=0, temperature=1.0, labels=None, batch_size=256):
        """`num_images` new images, int32 (num_images, H, W, C); `labels` (num_images,) for a
        class-conditional model."""
        if not isinstance(num_images, (int, np.integer)) or num_images < 0:
            raise ValueError(f"Expected a non-negative integer num_images. Received num_images={num_images!r}.")
        shape = (int(num_images),) + self.image_shape
        return self._run(np.zeros(shape, np.int32), np.zeros(shape, bool), seed, temperature, labels, batch_size)

    def complete(self, images, known_mask, seed=0, temperature=1.0, labels=None, batch_size=256):
        """`images` with every pixel value where `known_mask` is False drawn from the model.

        Each drawn value is conditioned on the known and drawn values before it in raster order
        (and the channels before it in the pixel) only: an autoregressive model cannot condition on
        known pixels that come later.

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
        return self._run(images, known_mask, seed, temperature, labels, batch_size)

    def _run(self, images, known_mask, seed, temperature, labels, batch_size):
        if not temperature > 0:
            raise ValueError(f"Expected a positive temperature. Received temperature={temperature!r}.")
        seed, batch_size = check_seed(seed), check_batch_size(batch_size)
        labels = check_labels(labels, self.num_classes, len(images))
        chunks = []
        for chunk, start in enumerate(range(0, len(images), batch_size)):
            arguments = [np.asarray(images[start:start + batch_size], np.int32),
                         np.asarray(known_mask[start:start + batch_size], bool),
                         seed_argument(batch_seed(seed, chunk)), np.float32(temperature)]
            if labels is not None:
                arguments.append(np.asarray(labels[start:start + batch_size], np.int32))
            chunks.append(ops.convert_to_numpy(self.fill(*arguments)))
        return np.concatenate(chunks) if chunks else np.zeros(images.shape, np.int32)


_SAMPLERS = weakref.WeakKeyDictionary()


def _sampler(model, method):
    """The model's cached `Sampler` for `method`, so repeated calls reuse one traced loop."""
    if method not in METHODS:
        raise ValueError(f"Expected method to be one of {METHODS}. Received method={method!r}.")
    samplers = _SAMPLERS.setdefault(model, {})
    if method not in samplers:
        samplers[method] = Sampler(model, method=method)
    return samplers[method]


def sample(model, num_images, seed=0, temperature=1.0, labels=None, method="fast", batch_size=256):
    """Draw `num_images` images from `model`; int32 array (num_images, H, W, C).

    Args:
        labels: class-conditional models only (required there): ints (num_images,) in [0, K).
        method: "fast" (incremental, the default) or "plain" (the whole network at every step).
        batch_size: images per loop call (larger requests run in several calls; each call's seed
            is derived from `seed` and the call's index).
    """
    return _sampler(model, method).sample(num_images, seed, temperature, labels, batch_size)


def complete(model, images, known_mask, seed=0, temperature=1.0, labels=None, method="fast", batch_size=256):
    """Fill in the pixels of `images` where `known_mask` is False; int32 array like `images`.

    Each unknown value is drawn conditioned on the known (and drawn) values before it in raster
    order only, not on known pixels after it. Arguments as `sample`; `known_mask` is boolean of
    shape (N, H, W, C), (N, H, W) or (H, W).
    """
    return _sampler(model, method).complete(images, known_mask, seed, temperature, labels, batch_size)
