"""`CausalSelfAttention`: PixelSNAIL's causal multi-head self-attention (Chen et al. 2018), the layer
of the `pixelsnail` arch (its block builder: `pixel_keras.blocks.pixelsnail_block`).

Exactness (the choice, and why it is exact). A query at pixel i attends to keys and values of
strictly earlier PIXELS j < i in raster order, never to pixel i itself; pixel i's own information
reaches the block's output through the residual mask-B convolutions instead. Keys and values at an
earlier pixel may read all of its features (every colour group of pixel j precedes every sub-pixel
of pixel i). The query is where the colour order R -> G -> B matters: the stream's colour group c
at pixel i reads channels < c of pixel i, so the queries of the heads of colour group c come from a
mask-B 1 x 1 projection (input groups <= c), and the output projection is mask B too (output group
c reads the heads of groups <= c). Hence output group c at pixel i reads x_<i and channels < c of
pixel i: mask-B semantics, exactly, as the convolutions around it. Each colour group has its own
`heads` heads (heads * color_channels in all), so no dot product mixes groups.

Every query also sees a "null" slot (score 0, value 0), so that the first pixel, with no earlier
pixel, has a defined (zero) output and a query can attend to nothing.

Incremental step: a key / value cache of the image's H * W positions; at pixel (row, col) the
query attends to the cache's first row * W + col entries, then the pixel's key and value are
written at its position (the walk runs a pixel's step once per colour channel; the last run, whose
stream is final at the pixel, writes the entry the later pixels read).
"""

import math

import keras
from keras import ops

from pixel_keras.layers.incremental_step import IncrementalStep, flat_pixel, in_compute_dtype
from pixel_keras.masks import causal_mask

_NEG = -1e9  # score of a masked key, in float32 (the softmax always runs in float32)
# Queries per attention block in `call`: a block's scores are batch x heads x QUERY_BLOCK x (keys
# before the block's end) floats, which bounds the memory of scoring (28 x 28 at batch 256, 2 heads:
# <= 206 MB per block instead of 1.26 GB per layer) and skips the keys after each block (the
# scores of a 28 x 28 image: 63% of the full square).
QUERY_BLOCK = 128


@keras.saving.register_keras_serializable(package="pixel_keras")
class CausalSelfAttention(IncrementalStep, keras.layers.Layer):
    """Multi-head self-attention over the strictly earlier pixels, in raster order.

    Args:
        units: output features.
        heads: heads per colour group (heads * color_channels heads in all).
        key_dim: features of each head's queries and keys (and values).
        color_channels: colour groups of the image (1 grayscale, 3 RGB); input and output features
            are split into that many contiguous groups (as `MaskedConv2D`'s).
        kernel_initializer: initializer of the four projections.
        **kwargs: base `keras.layers.Layer` arguments.

    Input (batch, H, W, features); output (batch, H, W, units). Memory: the scores of a block of
    `QUERY_BLOCK` queries, (batch, heads * color_channels, QUERY_BLOCK, <= H * W) floats.
    """

    def __init__(self, units, heads=2, key_dim=16, color_channels=1, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.image_height = None  # set by `build`: sizes the incremental step's key/value cache
        for name, value in (("units", units), ("heads", heads), ("key_dim", key_dim), ("color_channels", color_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Expected {name} to be a positive integer. Received {name}={value!r}.")
        self.units, self.heads, self.key_dim, self.color_channels = units, heads, key_dim, color_channels
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.query_mask = self.output_mask = None

    @property
    def total_heads(self):
        return self.heads * self.color_channels

    def build(self, input_shape):
        features, inner = input_shape[-1], self.total_heads * self.key_dim
        self.image_height = input_shape[1]
        # Heads are group-major (the first `heads` heads are colour group 0's): 1 x 1 mask-B masks.
        self.query_mask = causal_mask((1, 1), features, inner, "B", self.color_channels)[0, 0]
        self.output_mask = causal_mask((1, 1), inner, self.units, "B", self.color_channels)[0, 0]
        for part, shape in (("query", (features, inner)), ("key", (features, inner)),
                            ("value", (features, inner)), ("output", (inner, self.units))):
            setattr(self, f"{part}_kernel", self.add_weight(name=f"{part}_kernel", shape=shape,
                                                            initializer=self.kernel_initializer))
            setattr(self, f"{part}_bias", self.add_weight(name=f"{part}_bias", shape=shape[-1:], initializer="zeros"))

    def _weights(self):
        """(query, key, value, output) (kernel, bias) pairs in the compute dtype, masks applied."""
        masks = {"query": self.query_mask, "output": self.output_mask}
        pairs = []
        for part in ("query", "key", "value", "output"):
            kernel = in_compute_dtype(self, getattr(self, f"{part}_kernel").value)
            if part in masks:
                kernel = kernel * ops.cast(masks[part], self.compute_dtype)
            pairs.append((kernel, in_compute_dtype(self, getattr(self, f"{part}_bias").value)))
        return tuple(pairs)

    def _attend(self, queries, keys, values, allowed):
        """Softmax attention with a null slot: queries (b, n, heads, d), keys / values (b, m, heads,
        d), `allowed` (n, m) or (b, 1, n, m) booleans -> (b, n, heads * d)."""
        scores = ops.einsum("bnhd,bmhd->bhnm", queries, keys)
        scores = ops.cast(scores, "float32") / math.sqrt(self.key_dim)
        scores = ops.where(allowed, scores, _NEG)
        scores = ops.concatenate([scores, ops.zeros_like(scores[..., :1])], axis=-1)  # the null slot
        weights = ops.cast(ops.softmax(scores, axis=-1)[..., :-1], self.compute_dtype)
        out = ops.einsum("bhnm,bmhd->bnhd", weights, values)
        return ops.reshape(out, (ops.shape(out)[0], ops.shape(out)[1], self.total_heads * self.key_dim))

    def _project(self, x, pair):
        kernel, bias = pair
        return ops.matmul(x, kernel) + bias

    def _split_heads(self, x):
        return ops.reshape(x, (ops.shape(x)[0], ops.shape(x)[1], self.total_heads, self.key_dim))

    def call(self, inputs):
        query, key, value, output = self._weights()
        shape = ops.shape(inputs)
        positions = shape[1] * shape[2]
        flat = ops.reshape(inputs, (shape[0], positions, inputs.shape[-1]))
        queries, keys, values = (self._split_heads(self._project(flat, pair)) for pair in (query, key, value))
        index = ops.arange(positions)
        static = None if None in inputs.shape[1:3] else inputs.shape[1] * inputs.shape[2]
        if static is None:  # an unknown size: one block of every query
            blocks = [(0, positions)]
        else:
            blocks = [(start, min(start + QUERY_BLOCK, static)) for start in range(0, static, QUERY_BLOCK)]
        attended = []
        for start, stop in blocks:
            # Queries [start, stop) read keys before `stop` only, key j strictly before query i.
            allowed = ops.expand_dims(index[start:stop], 1) > ops.expand_dims(index[:stop], 0)
            attended.append(self._attend(queries[:, start:stop], keys[:, :stop], values[:, :stop], allowed))
        attended = attended[0] if len(attended) == 1 else ops.concatenate(attended, axis=1)
        out = self._project(attended, output)
        return ops.reshape(out, (shape[0], shape[1], shape[2], self.units))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "heads": self.heads, "key_dim": self.key_dim,
                "color_channels": self.color_channels,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}

    # Incremental step (the protocol of pixel_keras.layers.incremental_step): the cache holds every
    # position of the image the layer was built on.

    def step_start(self, batch, width):
        if self.image_height is None:
            raise NotImplementedError(f"CausalSelfAttention {self.name!r} was built without an image height; "
                                      "its key/value cache needs one.")
        inner = (batch, self.image_height * width, self.total_heads, self.key_dim)
        cache = ops.zeros(inner, self.compute_dtype)
        return (self._weights(), width), (ops.zeros((), "int32"), cache, cache)

    def step(self, weights, state, col, inputs, conditioning=None):
        (query, key, value, output), width = weights
        row, keys, values = state
        pixel = flat_pixel(inputs)[:, None]  # (b, 1, features)
        position = row * width + ops.cast(col, "int32")
        allowed = ops.reshape(ops.arange(keys.shape[1]) < position, (1, 1, 1, -1))
        queries = self._split_heads(self._project(pixel, query))
        out = self._project(self._attend(queries, keys, values, allowed), output)
        start = [0, position, 0, 0]
        keys = ops.slice_update(keys, start, self._split_heads(self._project(pixel, key)))
        values = ops.slice_update(values, start, self._split_heads(self._project(pixel, value)))
        return (row, keys, values), ops.reshape(out, (-1, 1, 1, self.units))

    def end_of_row(self, weights, state):
        row, keys, values = state
        return (row + 1, keys, values)
