"""`GatedBlock`: one layer of the Gated PixelCNN's vertical and horizontal stacks (no blind spot)."""

import keras
from keras import ops

from pixel_keras.layers.incremental_step import PIXEL, ROW, IncrementalStep, in_compute_dtype
from pixel_keras.layers.masked_conv import MaskedConv2D


def gate(pre_activation):
    """tanh(a) * sigmoid(b) of the two halves a, b of the last axis.

    Feature f of a and feature f of b sit at the same place in their halves (the blocks of
    `MaskedConv2D(output_blocks=2)`), so they share a colour group and so does their product.
    """
    content, gate_logits = ops.split(pre_activation, 2, axis=-1)
    return ops.tanh(content) * ops.sigmoid(gate_logits)


def shift_down(feature_map):
    """Move a (batch, H, W, F) map down one row (zeros on top): row i then holds row i - 1."""
    return ops.pad(feature_map, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


@keras.saving.register_keras_serializable(package="pixel_keras")
class GatedBlock(IncrementalStep, keras.layers.Layer):
    """A Gated PixelCNN layer (van den Oord et al. 2016b, Figure 2) on the two stacks.

    Vertical stack: a k x k convolution with mask "V" (rows up to the current one, whole), gated.
    Its output at row i has seen the whole of row i, so it reaches the horizontal stack only shifted
    down one row: the link, a 1 x 1 convolution of the shifted vertical pre-activation, carries
    rows above only, which every colour group may see, so it needs no colour mask.
    Horizontal stack: a 1 x k convolution with mask B (the pixels to the left, and the current pixel
    through colour groups) plus the link, gated with colour groups in both halves, then a 1 x 1
    mask-B convolution. The caller adds the residual connection and collects the skip outputs.

    Args:
        units: features of each stack (the gate pre-activations have 2 * units).
        kernel_size: odd k of the vertical k x k and the horizontal 1 x k convolution.
        color_channels: colour groups of the image (1 grayscale, 3 RGB).
        kernel_initializer: initializer of every kernel.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: [vertical, horizontal] maps (batch, H, W, units).
        conditioning: optional bias broadcastable to (batch, H, W, 4 * units) (e.g. from
            `Conditioning`): its first 2 * units features are added to the vertical gate
            pre-activation, the last 2 * units to the horizontal one.

    Returns:
        [vertical output, horizontal output], each (batch, H, W, units).

    Incremental step (`pixel_keras.layers.incremental_step`): the vertical stack (mask V: rows up
    to the pixel's, whole) is a ROW stage: once row r is final, its k x k convolution over the
    window of vertical input rows r - k // 2 .. r gives row r's pre-activations, hence the vertical
    output of row r and the link that the horizontal stack of row r + 1 adds (the vertical map
    shifted down). The horizontal stack is a PIXEL stage: its 1 x k mask-B window plus that link
    row. State: the vertical input window, the horizontal convolution's window, the link row.
    """

    def __init__(self, units, kernel_size=3, color_channels=1, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or isinstance(units, bool) or units < color_channels:
            raise ValueError(
                f"Expected units to be an integer >= color_channels={color_channels}. Received units={units!r}."
            )
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"Expected an odd positive integer kernel_size. Received kernel_size={kernel_size!r}.")
        self.units = units
        self.kernel_size = kernel_size
        self.color_channels = color_channels
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        init = dict(kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy)  # sub-layers: our policy
        self.vertical = MaskedConv2D(2 * units, kernel_size, "V", name="vertical", **init)
        self.link = keras.layers.Conv2D(2 * units, 1, name="vertical_to_horizontal", **init)
        self.horizontal = MaskedConv2D(
            2 * units, (1, kernel_size), "B", color_channels, output_blocks=2, name="horizontal", **init
        )
        self.output_conv = MaskedConv2D(units, 1, "B", color_channels, name="horizontal_output", **init)

    @property
    def conditioning_units(self):
        """Features of the conditioning bias this layer takes: both stacks' pre-activations."""
        return 4 * self.units

    def build(self, input_shape):
        vertical_shape, horizontal_shape = input_shape
        self.vertical.build(vertical_shape)
        self.link.build(tuple(vertical_shape[:-1]) + (2 * self.units,))
        self.horizontal.build(horizontal_shape)
        self.output_conv.build(tuple(horizontal_shape[:-1]) + (self.units,))

    def call(self, inputs, conditioning=None):
        vertical, horizontal = inputs
        vertical_pre = self.vertical(vertical)
        horizontal_pre = self.horizontal(horizontal) + self.link(shift_down(vertical_pre))
        if conditioning is not None:
            vertical_bias, horizontal_bias = ops.split(conditioning, 2, axis=-1)
            vertical_pre = vertical_pre + vertical_bias
            horizontal_pre = horizontal_pre + horizontal_bias
        return [gate(vertical_pre), self.output_conv(gate(horizontal_pre))]

    def step_stages(self, input_stages):
        if list(input_stages[:2]) != [ROW, PIXEL] or self.horizontal.kernel_size[0] != 1 \
                or self.output_conv.kernel_size != (1, 1):
            raise NotImplementedError(
                f"GatedBlock {self.name!r} needs a per-row vertical and a per-pixel horizontal input "
                f"(and a 1 x k horizontal, 1 x 1 output convolution). Received stages {input_stages[:2]}."
            )
        return [ROW, PIXEL]

    def step_start(self, batch, width):
        link_matrix = ops.reshape(in_compute_dtype(self.link, self.link.kernel), (-1, self.link.filters))
        link_bias = in_compute_dtype(self.link, self.link.bias) if self.link.use_bias else None
        link_row = ops.zeros((batch, 1, width, self.link.filters), self.compute_dtype)  # row 0 reads a zero row above
        if link_bias is not None:
            link_row = link_row + link_bias
        (vertical_weights, vertical_state), (horizontal_weights, horizontal_state), (output_weights, output_state) = [
            conv.step_start(batch, width) for conv in (self.vertical, self.horizontal, self.output_conv)]
        weights = (vertical_weights, horizontal_weights, output_weights, link_matrix, link_bias)
        return weights, (vertical_state, horizontal_state, output_state, link_row)

    @staticmethod
    def _biases(conditioning):
        return (None, None) if conditioning is None else ops.split(conditioning, 2, axis=-1)

    def step(self, weights, state, col, inputs, conditioning=None):
        _, horizontal_weights, output_weights, _, _ = weights
        vertical_state, horizontal_state, output_state, link_row = state
        horizontal_state, pre = self.horizontal.step_apply(horizontal_weights, horizontal_state, col, inputs[1])
        pre = pre + ops.slice(link_row, [0, 0, col, 0], [ops.shape(link_row)[0], 1, 1, link_row.shape[-1]])
        bias = self._biases(conditioning)[1]
        if bias is not None:
            pre = pre + bias
        output_state, out = self.output_conv.step_apply(output_weights, output_state, col, gate(pre))
        return (vertical_state, horizontal_state, output_state, link_row), [None, out]

    def row_step(self, weights, state, inputs, conditioning=None):
        vertical_weights, _, _, link_matrix, link_bias = weights
        (window,), horizontal_state, output_state, _ = state
        conv = self.vertical
        window = ops.slice_update(window, [0, conv.kernel_size[0] // 2, conv.kernel_size[1] // 2, 0], inputs[0])
        pre = conv.row_apply(vertical_weights, window)
        link_row = ops.matmul(pre, link_matrix)
        if link_bias is not None:
            link_row = link_row + link_bias
        bias = self._biases(conditioning)[0]
        if bias is not None:
            pre = pre + bias
        return ((window,), horizontal_state, output_state, link_row), [gate(pre), None]

    def end_of_row(self, weights, state):
        vertical_weights, horizontal_weights = weights[:2]
        vertical_state, horizontal_state, output_state, link_row = state
        return (self.vertical.end_of_row(vertical_weights, vertical_state),
                self.horizontal.end_of_row(horizontal_weights, horizontal_state), output_state, link_row)

    def compute_output_shape(self, input_shape):
        vertical_shape, horizontal_shape = input_shape
        return [tuple(vertical_shape[:-1]) + (self.units,), tuple(horizontal_shape[:-1]) + (self.units,)]

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            kernel_size=self.kernel_size,
            color_channels=self.color_channels,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
