"""Incremental (cached) evaluation of a functional model at one pixel: the fast sampler's step.

Sampling changes one value per step, so a step only needs every layer's output at the new position
(Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive Models"). This module
walks a functional model's graph once and gives each layer a *rule*: how to compute the layer's
output at pixel (row, col) from the pixel values of its inputs and a small per-layer state:

- pointwise layers (`Rescaling`, `ReLU`, `Add`, ..., 1 x 1 `MaskedConv2D`) apply at the pixel;
- a k x k `MaskedConv2D` keeps its input's last k // 2 + 1 rows (the rows its mask reads) and
  multiplies the patch around the pixel by the masked kernel;
- `RowLSTM` keeps the previous row's (h, c), final once a row is done: a step computes the gates at
  one pixel from the k states above and the current row's input (its own 1 x k window);
- `SpatialLSTM`: the state at (r, c) comes from (r - 1, c) and (r, c - 1): one pixel at a time;
- `DiagonalBiLSTM`: the left-to-right direction advances one pixel at a time (state from the pixel
  above and the one to the left); the right-to-left direction's output is used shifted down a row,
  so at the end of row r (its input row final) one scan right to left computes its states of row r,
  which row r + 1 reads;
- `GatedBlock`: the horizontal stack at one pixel (1 x k window plus the link from the vertical
  stack's row above); the vertical stack (mask V: its output at row r reads all of row r) is a
  per-row stage, computed for row r at the end of row r and read by row r + 1.

Inputs that do not depend on the image (class labels, a multi-scale conditioning map, and what is
computed from them) are evaluated once, whole; a layer that reads one of image size (H, W) gets it
at the pixel (or row) being computed, others are broadcast. A pixel value is a (batch, 1, 1,
features) map, so that Keras' own pointwise layers apply unchanged. `RULES` maps layer classes to
rules; other modules extend it with `register_rule`. A layer with no rule raises
`NotImplementedError` naming its class.
"""

import collections

import keras
import numpy as np
from keras import ops

from pixel_keras.heads import DiscretizedLogisticMixture
from pixel_keras.layers.diagonal_bilstm import DiagonalBiLSTM
from pixel_keras.layers.gated import GatedBlock, gate
from pixel_keras.layers.lstm_cell import lstm_update
from pixel_keras.layers.masked_conv import MaskedConv2D
from pixel_keras.layers.row_lstm import RowLSTM
from pixel_keras.layers.spatial_lstm import SpatialLSTM
from pixel_keras.masks import feature_groups

RULES = {}
# Stages of a tensor that depends on the image: computed at each pixel, or for a row once it is final.
PIXEL, ROW = "pixel", "row"


def register_rule(*layer_classes):
    """Class decorator: use this rule for layers of `layer_classes` (and their subclasses)."""

    def register(rule_class):
        for layer_class in layer_classes:
            RULES[layer_class] = rule_class
        return rule_class

    return register


def rule_for(layer, image_shape):
    """The rule object of `layer`: the registered rule of its class or of its nearest base class."""
    for cls in type(layer).__mro__:
        if cls in RULES:
            return RULES[cls](layer, image_shape)
    raise NotImplementedError(
        f"No incremental sampling rule for layer {layer.name!r} of class {type(layer).__name__}; "
        "register one with pixel_keras.incremental.register_rule, or sample with method='plain'."
    )


def _rows(tensor, start, size):
    """tensor[:, start:start + size] along axis 1 for a traced `start` (keras.ops.slice)."""
    shape = ops.shape(tensor)
    return ops.slice(tensor, [0, start] + [0] * (len(tensor.shape) - 2), [shape[0], size] + list(tensor.shape[2:]))


def _put(tensor, start, update):
    """tensor with `update` written at index `start` of axis 1 (keras.ops.slice_update)."""
    return ops.slice_update(tensor, [0, start] + [0] * (len(tensor.shape) - 2), update)


def _in_compute_dtype(layer, value):
    """A weight or a float input of `layer` in its compute dtype, as `Layer.__call__` would give it
    (other call arguments, e.g. `training=False`, unchanged):
    the rules compute outside `__call__` (no autocast), so under a mixed-precision policy a float32
    variable or a float32 input (e.g. into the float32 head) would otherwise meet bfloat16 values."""
    if not hasattr(value, "dtype") or not keras.backend.is_float_dtype(keras.backend.standardize_dtype(value.dtype)):
        return value
    return ops.cast(value, layer.compute_dtype)


def _layer_arguments(node, values):
    """(args, kwargs) of a node's layer call from `values`, float tensors in the layer's compute dtype."""
    args, kwargs = node.arguments.fill_in(values)
    return keras.tree.map_structure(lambda value: _in_compute_dtype(node.operation, value), (args, kwargs))


def _shift_rows_up(window):
    """Drop the oldest row of a row window and append a zero row (the new current row)."""
    return ops.concatenate([window[:, 1:], ops.zeros_like(window[:, :1])], axis=1)


class PointwiseRule:
    """A layer whose output at a pixel depends on its inputs at that pixel only: call it there."""

    # The layer's output at a pixel reads its inputs at that pixel alone and nothing else.
    pointwise = True

    def __init__(self, layer, image_shape):
        self.layer = layer
        self.image_shape = image_shape

    def start(self, batch):
        """The initial state (a tuple of tensors) for `batch` images; also reads the weights once."""
        return ()

    def output_stages(self, input_stages, num_outputs):
        """Stage of each output from the stages of the inputs (None: image-independent)."""
        stages = set(filter(None, input_stages))
        if len(stages) != 1:
            raise NotImplementedError(
                f"Layer {self.layer.name!r} of class {type(self.layer).__name__} mixes per-pixel and per-row inputs."
            )
        return [stages.pop()] * num_outputs

    def step(self, state, row, col, args, kwargs):
        """(state, output at pixel (row, col)) from the inputs' values at that pixel."""
        return state, self.layer(*args, **kwargs)

    def row_step(self, state, row, args, kwargs):
        """(state, output for the whole of row `row`, (batch, 1, W, ...)) from the inputs' rows."""
        return state, self.layer(*args, **kwargs)

    def end_row(self, state, row):
        """Called once row `row` is final in every layer's input."""
        return state


for _layer_class in (keras.layers.Rescaling, keras.layers.ReLU, keras.layers.Activation, keras.layers.Add,
                     keras.layers.Subtract, keras.layers.Multiply, keras.layers.Average, keras.layers.Maximum,
                     keras.layers.Minimum, keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.Identity,
                     keras.layers.Dropout, DiscretizedLogisticMixture):
    RULES[_layer_class] = PointwiseRule


@register_rule(keras.layers.Reshape)
class ReshapeRule(PointwiseRule):
    """A Reshape that keeps the (H, W) axes and reshapes the features of each pixel."""

    def __init__(self, layer, image_shape):
        super().__init__(layer, image_shape)
        if tuple(layer.target_shape[:2]) != tuple(layer.input.shape[1:3]):  # the model's (H, W), kept
            raise NotImplementedError(
                f"Reshape layer {layer.name!r} changes the image axes (target_shape={layer.target_shape}); "
                "only per-pixel reshapes have an incremental rule."
            )

    def step(self, state, row, col, args, kwargs):
        (pixel,) = args
        return state, ops.reshape(pixel, (-1, 1, 1) + tuple(self.layer.target_shape[2:]))

    def row_step(self, state, row, args, kwargs):
        (values,) = args
        return state, ops.reshape(values, (-1, 1, self.image_shape[1]) + tuple(self.layer.target_shape[2:]))


@register_rule(MaskedConv2D)
class MaskedConvRule(PointwiseRule):
    """A masked convolution at one pixel: its input's rows r - k // 2 .. r (the rows its mask reads)
    are kept in a window (batch, k // 2 + 1, W + k - 1, features), zero-padded left and right."""

    def __init__(self, layer, image_shape):
        super().__init__(layer, image_shape)
        self.kernel_rows, self.kernel_cols = layer.kernel_size
        self.rows_above, self.half_width = self.kernel_rows // 2, self.kernel_cols // 2
        self.pointwise = layer.kernel_size == (1, 1)
        self.in_features = layer.kernel.shape[2]
        self.row_output = False  # a mask that reads the current row right of the pixel: per row

    def output_stages(self, input_stages, num_outputs):
        (stage,) = super().output_stages(input_stages, num_outputs)
        mask = np.asarray(self.layer.mask)
        if stage != PIXEL or mask[self.rows_above + 1:].any():
            raise NotImplementedError(
                f"MaskedConv2D {self.layer.name!r} reads rows below the pixel or a per-row input; "
                "it has no incremental rule."
            )
        self.row_output = bool(mask[self.rows_above, self.half_width + 1:].any())
        return [ROW if self.row_output else PIXEL]

    def centre_ignores_last_channel(self, channels):
        """True when the output at a pixel does not read that pixel's last colour group (mask A, V):
        then what the model computes at a pixel is final before its last value is drawn."""
        groups = feature_groups(self.in_features, channels)
        centre = np.asarray(self.layer.mask)[self.rows_above, self.half_width]
        return not centre[groups == channels - 1].any()

    def start(self, batch):
        kernel = self.layer.kernel[: self.rows_above + 1]  # the masked kernel: rows below are zero
        self.matrix = ops.reshape(kernel, (-1, self.layer.filters))
        self.bias = _in_compute_dtype(self.layer, self.layer.bias) if self.layer.use_bias else None
        if self.pointwise:
            return ()
        width = self.image_shape[1] + 2 * self.half_width
        return (ops.zeros((batch, self.rows_above + 1, width, self.in_features), self.layer.compute_dtype),)

    def write(self, state, col, pixel):
        """The window with the input `pixel` (batch, 1, 1, features) stored at column `col`."""
        if self.pointwise:
            return state
        (window,) = state
        window = ops.slice_update(window, [0, self.rows_above, col + self.half_width, 0], pixel)
        return (window,)

    def apply(self, state, col, pixel):
        """Output (batch, 1, 1, filters) at column `col` of the current row, input `pixel` there."""
        state = self.write(state, col, pixel)
        if self.pointwise:
            patch = pixel
        else:
            (window,) = state
            patch = ops.slice(window, [0, 0, col, 0],
                              [ops.shape(window)[0], self.rows_above + 1, self.kernel_cols, self.in_features])
        out = ops.matmul(ops.reshape(patch, (-1, self.matrix.shape[0])), self.matrix)
        if self.bias is not None:
            out = out + self.bias
        return state, ops.reshape(out, (-1, 1, 1, self.layer.filters))

    def step(self, state, row, col, args, kwargs):
        (pixel,) = args
        if self.row_output:
            return self.write(state, col, pixel), None
        return self.apply(state, col, pixel)

    def row_step(self, state, row, args, kwargs):
        """The whole current row (batch, 1, W, filters) from the window (convolutions whose mask
        reads the row right of the pixel: their output at row r is final once row r is)."""
        return state, self.row_apply(state[0])

    def row_apply(self, window):
        """The convolution over the window's rows at every column, (batch, 1, W, filters): one
        matmul of the patches (a TensorFlow convolution returns a wrong shape for an empty batch)."""
        width = self.image_shape[1]
        patches = ops.stack([window[:, :, col:col + width] for col in range(self.kernel_cols)], axis=2)
        patches = ops.reshape(ops.transpose(patches, (0, 3, 1, 2, 4)), (-1, 1, width, self.matrix.shape[0]))
        out = ops.matmul(patches, self.matrix)
        return out if self.bias is None else out + self.bias

    def end_row(self, state, row):
        return state if self.pointwise else (_shift_rows_up(state[0]),)


def _gates(vector):
    """(batch, 1, 1, f) or (batch, f) -> (batch, f)."""
    return ops.reshape(vector, (-1, vector.shape[-1]))


def _add_conditioning(gates, kwargs):
    """Add the layer call's optional `conditioning` bias at this pixel (already a pixel value)."""
    conditioning = kwargs.get("conditioning")
    return gates if conditioning is None else gates + _gates(ops.broadcast_to(
        conditioning, (ops.shape(gates)[0], 1, 1, gates.shape[-1])))


@register_rule(RowLSTM)
class RowLSTMRule(PointwiseRule):
    """Row LSTM at one pixel. State: the 1 x k input-to-state window of the current row, the
    previous row's h (zero-padded by k // 2 on both sides) and c, and the current row's h and c,
    which become the previous row's at the end of the row."""

    pointwise = False

    def __init__(self, layer, image_shape):
        super().__init__(layer, image_shape)
        self.conv = MaskedConvRule(layer.input_to_state, image_shape)
        self.half = layer.kernel_size // 2

    def start(self, batch):
        units, width = self.layer.units, self.image_shape[1]
        self.state_matrix = ops.reshape(self.layer.compute_kernel(self.layer.state_to_state), (-1, 4 * units))
        hidden = ops.zeros((batch, width + 2 * self.half, units), self.layer.compute_dtype)
        cell = ops.zeros((batch, width, units), self.layer.compute_dtype)
        return (self.conv.start(batch), hidden, cell, hidden, cell)

    def step(self, state, row, col, args, kwargs):
        conv_state, hidden_above, cell_above, hidden_row, cell_row = state
        conv_state, input_gates = self.conv.apply(conv_state, col, args[0])
        gates = _add_conditioning(_gates(input_gates), kwargs)
        above = _rows(hidden_above, col, self.layer.kernel_size)  # positions col - k // 2 .. col + k // 2
        gates = gates + ops.matmul(ops.reshape(above, (-1, self.state_matrix.shape[0])), self.state_matrix)
        cell, hidden = lstm_update(gates, (_rows(cell_above, col, 1)[:, 0],))
        hidden_row = _put(hidden_row, col + self.half, hidden[:, None])
        cell_row = _put(cell_row, col, cell[:, None])
        return (conv_state, hidden_above, cell_above, hidden_row, cell_row), hidden[:, None, None]

    def end_row(self, state, row):
        conv_state, _, _, hidden_row, cell_row = state
        return (self.conv.end_row(conv_state, row), hidden_row, cell_row, hidden_row, cell_row)


@register_rule(DiagonalBiLSTM)
class DiagonalBiLSTMRule(PointwiseRule):
    """Diagonal BiLSTM at one pixel.

    Left to right, the skewed scan's state at pixel (r, c) comes from (r - 1, c) (tap 0) and
    (r, c - 1) (tap 1, and the cell state): a step advances it by one pixel. Positions of the skewed
    map outside the image have zero input and zero neighbours on the image side, so their state is
    zero: exactly the zero padding used here. The right-to-left direction at (r, c) reads (r - 1, c)
    and (r, c + 1); its output is added shifted down a row, so a step only reads the finished row
    above, and `end_row` scans row r right to left once the layer's input row r is final.

    State: h of the previous row (left to right), the current row's h and c (one zero column in
    front: the left neighbour of column 0), the current row's right-to-left input gates, and the
    right-to-left h of the previous row.
    """

    pointwise = False

    def start(self, batch):
        units, width = self.layer.units, self.image_shape[1]
        self.input_matrices = [ops.reshape(conv.kernel, (-1, 4 * units)) for conv in self.layer.input_to_state]
        self.input_biases = [_in_compute_dtype(conv, conv.bias) for conv in self.layer.input_to_state]
        self.state_matrices = [ops.reshape(self.layer.compute_kernel(kernel), (2 * units, 4 * units))
                               for kernel in self.layer.state_to_state]
        dtype = self.layer.compute_dtype
        row = ops.zeros((batch, width, units), dtype)
        padded_row = ops.zeros((batch, width + 1, units), dtype)
        return (row, padded_row, padded_row, ops.zeros((batch, width, 4 * units), dtype), row)

    def step(self, state, row, col, args, kwargs):
        hidden_above, hidden_row, cell_row, right_gates, right_above = state
        pixel = _gates(args[0])
        left_gates, right_input = [
            _add_conditioning(ops.matmul(pixel, matrix) + bias, kwargs)
            for matrix, bias in zip(self.input_matrices, self.input_biases)
        ]
        right_gates = _put(right_gates, col, right_input[:, None])
        neighbours = ops.concatenate([_rows(hidden_above, col, 1)[:, 0], _rows(hidden_row, col, 1)[:, 0]], axis=-1)
        gates = left_gates + ops.matmul(neighbours, self.state_matrices[0])
        cell, hidden = lstm_update(gates, (_rows(cell_row, col, 1)[:, 0],))
        hidden_row = _put(hidden_row, col + 1, hidden[:, None])
        cell_row = _put(cell_row, col + 1, cell[:, None])
        out = hidden + _rows(right_above, col, 1)[:, 0]  # right to left, shifted down one row
        return (hidden_above, hidden_row, cell_row, right_gates, right_above), out[:, None, None]

    def end_row(self, state, row):
        hidden_above, hidden_row, cell_row, right_gates, right_above = state
        width = self.image_shape[1]

        def body(step, hidden_right, cell_right, right_row):
            col = width - 1 - step
            neighbours = ops.concatenate([_rows(right_above, col, 1)[:, 0], hidden_right], axis=-1)
            gates = _rows(right_gates, col, 1)[:, 0] + ops.matmul(neighbours, self.state_matrices[1])
            cell_right, hidden_right = lstm_update(gates, (cell_right,))
            return step + 1, hidden_right, cell_right, _put(right_row, col, hidden_right[:, None])

        zeros = ops.zeros_like(right_above[:, 0])
        _, _, _, right_row = ops.while_loop(lambda step, *_: step < width, body,
                                            (ops.convert_to_tensor(0), zeros, zeros, ops.zeros_like(right_above)),
                                            maximum_iterations=width)
        return (hidden_row[:, 1:], hidden_row, cell_row, right_gates, right_row)


@register_rule(SpatialLSTM)
class SpatialLSTMRule(PointwiseRule):
    """Spatial LSTM at one pixel: h and c from the pixel above (r - 1, c) and the one to the left
    (r, c - 1); as in the Diagonal BiLSTM, skewed positions off the image have zero state.

    State: the previous row's h and c, the current row's h and c (one zero column in front)."""

    pointwise = False

    def start(self, batch):
        units, width, gates = self.layer.units, self.image_shape[1], self.layer.conditioning_units
        conv = self.layer.input_to_state
        self.input_matrix, self.input_bias = ops.reshape(conv.kernel, (-1, gates)), _in_compute_dtype(conv, conv.bias)
        self.state_matrix = ops.reshape(self.layer.compute_kernel(self.layer.state_to_state), (2 * units, gates))
        row = ops.zeros((batch, width, units), self.layer.compute_dtype)
        padded_row = ops.zeros((batch, width + 1, units), self.layer.compute_dtype)
        return (row, row, padded_row, padded_row)

    def step(self, state, row, col, args, kwargs):
        hidden_above, cell_above, hidden_row, cell_row = state
        gates = _add_conditioning(ops.matmul(_gates(args[0]), self.input_matrix) + self.input_bias, kwargs)
        neighbours = ops.concatenate([_rows(hidden_above, col, 1)[:, 0], _rows(hidden_row, col, 1)[:, 0]], axis=-1)
        gates = gates + ops.matmul(neighbours, self.state_matrix)
        cells = (_rows(cell_row, col, 1)[:, 0], _rows(cell_above, col, 1)[:, 0])  # forget gates f^c, f^r
        cell, hidden = lstm_update(gates, cells)
        hidden_row = _put(hidden_row, col + 1, hidden[:, None])
        cell_row = _put(cell_row, col + 1, cell[:, None])
        return (hidden_above, cell_above, hidden_row, cell_row), hidden[:, None, None]

    def end_row(self, state, row):
        _, _, hidden_row, cell_row = state
        return (hidden_row[:, 1:], cell_row[:, 1:], hidden_row, cell_row)


@register_rule(GatedBlock)
class GatedBlockRule(PointwiseRule):
    """Gated PixelCNN block. The vertical stack (mask V: rows up to the pixel's, whole) is a ROW
    stage: at the end of row r, its k x k convolution over the window of vertical input rows
    r - k // 2 .. r gives row r's pre-activations, hence the vertical output of row r and the link
    1 x 1 convolution that the horizontal stack of row r + 1 adds (the vertical map shifted down).
    The horizontal stack is a PIXEL stage: its 1 x k mask-B window plus that link row.

    State: the vertical input window, the horizontal convolution's window, the link row."""

    def __init__(self, layer, image_shape):
        super().__init__(layer, image_shape)
        self.vertical = MaskedConvRule(layer.vertical, image_shape)
        self.horizontal = MaskedConvRule(layer.horizontal, image_shape)
        self.output_conv = MaskedConvRule(layer.output_conv, image_shape)
        if tuple(self.horizontal.layer.kernel_size)[0] != 1 or not self.output_conv.pointwise:
            raise NotImplementedError(f"GatedBlock {layer.name!r}: unexpected kernel sizes.")

    def output_stages(self, input_stages, num_outputs):
        if list(input_stages[:2]) != [ROW, PIXEL]:
            raise NotImplementedError(
                f"GatedBlock {self.layer.name!r} needs a per-row vertical and a per-pixel horizontal input. "
                f"Received stages {input_stages[:2]}."
            )
        return [ROW, PIXEL]

    def start(self, batch):
        link = self.layer.link
        self.link_matrix = ops.reshape(_in_compute_dtype(link, link.kernel), (-1, link.filters))
        self.link_bias = _in_compute_dtype(link, link.bias) if link.use_bias else None
        dtype, width = self.layer.compute_dtype, self.image_shape[1]
        link_row = ops.zeros((batch, 1, width, link.filters), dtype)  # row 0 reads a zero row above
        if self.link_bias is not None:
            link_row = link_row + self.link_bias
        return (self.vertical.start(batch), self.horizontal.start(batch), self.output_conv.start(batch), link_row)

    def _biases(self, kwargs):
        conditioning = kwargs.get("conditioning")
        return (None, None) if conditioning is None else ops.split(conditioning, 2, axis=-1)

    def step(self, state, row, col, args, kwargs):
        vertical_state, horizontal_state, output_state, link_row = state
        horizontal_state, pre = self.horizontal.apply(horizontal_state, col, args[0][1])
        pre = pre + ops.slice(link_row, [0, 0, col, 0], [ops.shape(link_row)[0], 1, 1, link_row.shape[-1]])
        bias = self._biases(kwargs)[1]
        if bias is not None:
            pre = pre + bias
        output_state, out = self.output_conv.apply(output_state, col, gate(pre))
        return (vertical_state, horizontal_state, output_state, link_row), [None, out]

    def row_step(self, state, row, args, kwargs):
        vertical_state, horizontal_state, output_state, _ = state
        (window,) = vertical_state
        conv = self.vertical
        window = ops.slice_update(window, [0, conv.rows_above, conv.half_width, 0], args[0][0])
        pre = conv.row_apply(window)
        link_row = ops.matmul(pre, self.link_matrix)
        if self.link_bias is not None:
            link_row = link_row + self.link_bias
        bias = self._biases(kwargs)[0]
        if bias is not None:
            pre = pre + bias
        return ((window,), horizontal_state, output_state, link_row), [gate(pre), None]

    def end_row(self, state, row):
        vertical_state, horizontal_state, output_state, link_row = state
        return (self.vertical.end_row(vertical_state, row), self.horizontal.end_row(horizontal_state, row),
                output_state, link_row)


def split_inputs(model):
    """(images input, the other inputs) of a model. The images are its only input other than
    `labels`, or else the input named "images"; every other input (labels, the conditioning map of
    a multi-scale model's conditional stage) does not depend on the image being drawn."""
    named = [tensor for tensor in model.inputs if tensor.name != "labels"]
    if len(named) > 1:
        named = [tensor for tensor in named if tensor.name == "images"]
    if len(named) != 1 or len(model.outputs) != 1:
        raise NotImplementedError(
            f"Incremental sampling needs one image input (the only input besides `labels`, or one named "
            f"`images`) and one output. Received inputs {[t.name for t in model.inputs]} and "
            f"{len(model.outputs)} outputs."
        )
    return named[0], [tensor for tensor in model.inputs if tensor is not named[0]]


class IncrementalModel:
    """A functional model evaluated one pixel at a time.

    Use: `start(batch, labels)` -> (states, image-independent values); for each pixel in raster
    order, `step` once per colour channel (the logits there; channel c is right once channels < c
    of the pixel are in the image), then `commit` with the pixel's final values; `end_row` after the
    last pixel of a row.

    `image_shape` may have another height and width than the model's own (the codec codes any
    size): every rule computes one pixel or row from its own state, sized by `image_shape`, and
    the image-size context (a conditioning map) is given at that size.

    Every tensor that depends on the image has a stage: PIXEL (computed at each pixel) or ROW
    (computed for a whole row once the row is final, e.g. the Gated PixelCNN's vertical stack, whose
    output at row r sees all of row r and reaches predictions only shifted down a row).

    Raises:
        NotImplementedError: naming the layer class, for a layer with no rule.
    """

    def __init__(self, model, image_shape):
        self.model = model
        self.image_shape = tuple(image_shape)
        self.images_input, self.context_inputs = split_inputs(model)
        stages = {id(self.images_input): PIXEL}
        model_size = tuple(self.images_input.shape[1:3])  # (H, W) the model was built for
        spatial = set()  # image-independent tensors of image size that a plan entry reads
        self.global_nodes, self.plan = [], []
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                if node.is_input:
                    continue
                input_stages = [stages.get(id(tensor)) for tensor in node.input_tensors]
                if not any(input_stages):
                    self.global_nodes.append(node)
                    continue
                spatial.update(id(tensor) for tensor, stage in zip(node.input_tensors, input_stages)
                               if stage is None and tuple(tensor.shape[1:3]) == model_size)
                rule = rule_for(node.operation, self.image_shape)
                output_stages = rule.output_stages(input_stages, len(node.outputs))
                stages.update((id(tensor), stage) for tensor, stage in zip(node.outputs, output_stages))
                self.plan.append((node, rule, set(filter(None, input_stages)) | set(output_stages)))
        self.spatial = spatial
        self.output = model.outputs[0]
        if stages.get(id(self.output)) != PIXEL:
            raise NotImplementedError("The model's output is not computed pixel by pixel from its images.")
        self.commit_plan = self._commit_plan()

    def _commit_plan(self):
        """The plan entries `commit` runs: what reads the image at a pixel before a convolution
        whose output there ignores the pixel's last channel (or is only computed at the row's end).
        None when that is not the structure (then `commit` runs the whole step again)."""
        channels = self.image_shape[2]
        prefix, entries = {id(self.images_input)}, []
        for node, rule, _ in self.plan:
            if not any(id(tensor) in prefix for tensor in node.input_tensors):
                continue
            if isinstance(rule, MaskedConvRule) and (rule.row_output or rule.centre_ignores_last_channel(channels)):
                entries.append((node, rule, "write"))
            elif type(rule) is PointwiseRule or isinstance(rule, ReshapeRule):
                entries.append((node, rule, "step"))
                prefix.update(id(tensor) for tensor in node.outputs)
            else:
                return None
        return entries

    def start(self, batch, labels=None, context=None):
        """(states, values of the image-independent tensors) for `batch` images, from `labels` and
        `context` ({input name: value} of the other image-independent inputs, e.g. `conditioning_map`)."""
        context = {"labels": labels, **(context or {})}
        missing = [tensor.name for tensor in self.context_inputs if context.get(tensor.name) is None]
        if missing:
            raise ValueError(f"Expected values for the model inputs {missing}. Received {sorted(context)}.")
        values = {id(tensor): context[tensor.name] for tensor in self.context_inputs}
        for node in self.global_nodes:
            args, kwargs = node.arguments.fill_in(values)
            self._store(values, node, node.operation(*args, **kwargs))
        return [rule.start(batch) for _, rule, _ in self.plan], values

    @staticmethod
    def _store(values, node, outputs):
        for tensor, value in zip(node.outputs, keras.tree.flatten(outputs)):
            values[id(tensor)] = value

    def _at(self, fixed, row, col=None):
        """The image-independent values with those of image size read at pixel (row, col), as
        (batch, 1, 1, ...), or at row `row`, as (batch, 1, W, ...), when `col` is None."""
        values = dict(fixed)
        for key in self.spatial:
            value = _rows(fixed[key], row, 1)
            if col is not None:
                value = ops.slice(value, [0, 0, col] + [0] * (len(value.shape) - 3),
                                  [ops.shape(value)[0], 1, 1] + list(value.shape[3:]))
            values[key] = value
        return values

    def _run(self, states, fixed, pixel, stage, call, entries=None):
        """Run `call(rule, state, args, kwargs)` -> (state, outputs) over the plan entries of `stage`;
        inputs of the other stage read as None; `fixed` already read at the pixel or row (`_at`)."""
        values = collections.defaultdict(lambda: None, fixed)
        if pixel is not None:
            values[id(self.images_input)] = ops.cast(pixel, self.images_input.dtype)
        states = list(states)
        for index, (node, rule, stages) in enumerate(self.plan):
            if stage in stages:
                args, kwargs = _layer_arguments(node, values)
                states[index], outputs = call(rule, states[index], args, kwargs)
                self._store(values, node, outputs)
        return states, values

    def step(self, states, fixed, pixel, row, col):
        """(states, model output at pixel (row, col)) given the image `pixel` (batch, 1, 1, C)."""
        states, values = self._run(states, self._at(fixed, row, col), pixel, PIXEL,
                                   lambda rule, state, args, kwargs: rule.step(state, row, col, args, kwargs))
        return states, values[id(self.output)]

    def commit(self, states, fixed, pixel, row, col):
        """States with the pixel's final value (all channels) stored where later pixels read it."""
        if self.commit_plan is None:
            return self.step(states, fixed, pixel, row, col)[0]
        values = self._at(fixed, row, col)
        values[id(self.images_input)] = ops.cast(pixel, self.images_input.dtype)
        states = list(states)
        index_of = {id(node): index for index, (node, _, _) in enumerate(self.plan)}
        for node, rule, action in self.commit_plan:
            index = index_of[id(node)]
            args, kwargs = _layer_arguments(node, values)
            if action == "write":
                states[index] = rule.write(states[index], col, args[0])
                continue
            states[index], outputs = rule.step(states[index], row, col, args, kwargs)
            self._store(values, node, outputs)
        return states

    def end_row(self, states, fixed, row):
        """States after row `row` is final in every layer: the ROW stage computed for the row, then
        every rule's end-of-row update."""
        states, _ = self._run(states, self._at(fixed, row), None, ROW,
                              lambda rule, state, args, kwargs: rule.row_step(state, row, args, kwargs))
        return [rule.end_row(state, row) for state, (_, rule, _) in zip(states, self.plan)]
