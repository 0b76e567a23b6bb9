"""The incremental-step protocol: how a layer computes its output one pixel at a time.

Fast sampling and the codec (`pixel_keras.incremental`) walk a model's graph in raster order and
compute every layer only at the new pixel (Ramachandran et al. 2017). Each recurrent or windowed
layer of this package owns that step, next to its `call` and with the same arithmetic (the way
Keras' `LSTMCell` holds the step and `LSTM` the loop); `incremental.py` keeps only the graph walk.

A tensor that depends on the image has a *stage*: PIXEL (computed at each pixel) or ROW (computed
for a whole row once the row is final in every input, e.g. the Gated PixelCNN's vertical stack,
whose output at row r sees all of row r and reaches predictions only shifted down a row). A pixel
value is a (batch, 1, 1, features) map, a row value (batch, 1, W, features).

The protocol (`IncrementalStep`, a mixin; every method runs in the walk's traced graph):

- `step_stages(input_stages)`: the stage of each output from those of the inputs (None:
  image-independent, e.g. a `conditioning` bias); raises `NotImplementedError` for a combination the
  layer cannot step. Default: PIXEL in, PIXEL out.
- `step_start(batch, width)` -> (weights, state): the weights the step reads, in the compute
  dtype, read once per walk (kept out of the walk's loop state), and the state at the start of an
  image of `width` columns: a tuple of tensors (windows of past input rows, the previous row's
  recurrent state, ...). Read no variable here that the step does not use: each read is an op of
  the walk's compiled graph, and another graph may round differently (see BUILD_NOTES.md).
- `step(weights, state, col, inputs, conditioning=None)` -> (state, output at column `col` of the
  current row); outputs of the ROW stage are None here.
- `row_step(weights, state, inputs, conditioning=None)` -> (state, outputs of the ROW stage for the
  whole current row), called once the row is final (layers with a ROW output only).
- `end_of_row(weights, state)` -> the state for the next row.

The step reads the same weights in the same order of operations as `call`, so the fast sampler's
and the codec's floats equal what the code that wrote older blobs computed, bit for bit on one CPU.
"""

import keras
from keras import ops

# Stages of a tensor that depends on the image: computed at each pixel, or for a row once it is final.
PIXEL, ROW = "pixel", "row"


def single_stage(layer, input_stages, num_outputs=1):
    """The one stage of a layer's image inputs, for each of its outputs; mixed stages are an error."""
    stages = set(filter(None, input_stages))
    if len(stages) != 1:
        raise NotImplementedError(
            f"Layer {layer.name!r} of class {type(layer).__name__} mixes per-pixel and per-row inputs."
        )
    return [stages.pop()] * num_outputs


def in_compute_dtype(layer, value):
    """A weight or a float input of `layer` in its compute dtype, as `Layer.__call__` would give it
    (other values unchanged): steps compute outside `__call__` (no autocast), so under a
    mixed-precision policy a float32 variable would otherwise meet bfloat16 values."""
    if not hasattr(value, "dtype") or not keras.backend.is_float_dtype(keras.backend.standardize_dtype(value.dtype)):
        return value
    return ops.cast(value, layer.compute_dtype)


def rows_at(tensor, start, size):
    """tensor[:, start:start + size] along axis 1 for a traced `start` (keras.ops.slice)."""
    shape = ops.shape(tensor)
    return ops.slice(tensor, [0, start] + [0] * (len(tensor.shape) - 2), [shape[0], size] + list(tensor.shape[2:]))


def put_at(tensor, start, update):
    """tensor with `update` written at index `start` of axis 1 (keras.ops.slice_update)."""
    return ops.slice_update(tensor, [0, start] + [0] * (len(tensor.shape) - 2), update)


def shift_rows_up(window):
    """Drop the oldest row of a row window and append a zero row (the new current row)."""
    return ops.concatenate([window[:, 1:], ops.zeros_like(window[:, :1])], axis=1)


def flat_pixel(vector):
    """(batch, 1, 1, f) or (batch, f) -> (batch, f)."""
    return ops.reshape(vector, (-1, vector.shape[-1]))


def add_conditioning(gates, conditioning):
    """`gates` (batch, f) plus the optional `conditioning` bias at this pixel (a pixel value or a
    per-image (batch, 1, 1, f) bias)."""
    return gates if conditioning is None else gates + flat_pixel(ops.broadcast_to(
        conditioning, (ops.shape(gates)[0], 1, 1, gates.shape[-1])))


class IncrementalStep:
    """Mixin of the layers that own their incremental step (the protocol in this module's docstring)."""

    def step_stages(self, input_stages):
        stages = single_stage(self, input_stages)
        if stages != [PIXEL]:
            raise NotImplementedError(f"Layer {self.name!r} of class {type(self).__name__} needs a per-pixel input.")
        return stages

    def step_start(self, batch, width):
        return (), ()

    def step(self, weights, state, col, inputs, conditioning=None):
        raise NotImplementedError(f"{type(self).__name__} has no incremental step.")

    def row_step(self, weights, state, inputs, conditioning=None):
        raise NotImplementedError(f"{type(self).__name__} has no per-row output.")

    def end_of_row(self, weights, state):
        return state
