"""`SpatialLSTM`: the 2-D LSTM of RIDE (Theis & Bethge 2015), whose state comes from the left and above."""

import keras
from keras import ops

from pixel_keras.layers.incremental_step import (IncrementalStep, add_conditioning, flat_pixel, in_compute_dtype,
                                                 put_at, rows_at)
from pixel_keras.layers.lstm_cell import CausalLSTMLayer, conv1d_by_matmul, lstm_scan, lstm_update
from pixel_keras.layers.masked_conv import MaskedConv2D
from pixel_keras.layers.skew import Skew, Unskew


def _shift_down_one_row(column):
    """Row r of the result is row r - 1 of `column` (batch, rows, features); zeros in row 0."""
    return ops.pad(column[:, :-1], ((0, 0), (1, 0), (0, 0)))


@keras.saving.register_keras_serializable(package="pixel_keras")
class SpatialLSTM(IncrementalStep, CausalLSTMLayer):
    """Spatial LSTM ("Generative Image Modeling Using Spatial LSTMs", Theis & Bethge 2015).

    c_ij = g * i + f^c * c_{i,j-1} + f^r * c_{i-1,j},  h_ij = o * tanh(c_ij), the gates being an
    affine map of the input at (i, j) (a 1 x 1 convolution with mask B, so a colour group sees its
    pixel's groups up to its own) and of h_{i,j-1} and h_{i-1,j}. Skewed (row i moved right by i),
    both neighbours lie in the previous column, at rows r (left) and r - 1 (above): one scan over
    the H + W - 1 columns, with a 2 x 1 state-to-state convolution down the previous column and
    its cell state read as is (left) and shifted down one row (above). A single layer sees exactly
    the quadrant above-left of a pixel (rows <= i and columns <= j).

    Args:
        units: hidden features h per pixel (the layer outputs h features).
        color_channels: colour groups of the image (1 grayscale, 3 RGB).
        kernel_initializer: initializer of the kernels.
        **kwargs: base `keras.layers.Layer` arguments.

    Incremental step (`pixel_keras.layers.incremental_step`): h and c at one pixel from the pixel
    above and the one to the left (zero off the image, as in the skewed scan). State: the previous
    row's h and c, the current row's h and c (one zero column in front).
    """

    # Gate blocks in `lstm_update`'s order: o, f^c (left cell), f^r (cell above), i, g.
    GATES = 5

    def __init__(self, units, color_channels=1, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(units, color_channels, kernel_initializer, **kwargs)
        self.skew = Skew(name="skew", dtype=self.dtype_policy)
        self.unskew = Unskew(name="unskew", dtype=self.dtype_policy)
        self.input_to_state = MaskedConv2D(
            self.GATES * units, 1, mask_type="B", color_channels=color_channels, output_blocks=self.GATES,
            kernel_initializer=self.kernel_initializer, name="input_to_state", dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        self.input_to_state.build(input_shape)
        # Tap 0 reads h above (row r - 1 of the previous skewed column), tap 1 h to the left (row r).
        self.state_to_state = self.add_weight(
            name="state_to_state", shape=(2, self.units, self.GATES * self.units),
            initializer=self.kernel_initializer,
        )

    @property
    def conditioning_units(self):
        return self.GATES * self.units

    def call(self, inputs, conditioning=None):
        """`conditioning`: optional bias broadcastable to (batch, H, W, 5h), e.g. from
        `Conditioning`, added to the input-to-state map before the scan."""
        input_gates = self.input_to_state(inputs)
        if conditioning is not None:
            input_gates = input_gates + conditioning
        skewed = self.skew(input_gates)  # (B, H, H + W - 1, 5h), zeros off the image
        columns = ops.transpose(skewed, (2, 0, 1, 3))
        zeros = ops.zeros((ops.shape(inputs)[0], inputs.shape[1], self.units), dtype=self.compute_dtype)

        kernel = self.compute_kernel(self.state_to_state)

        def step_gates(hidden_previous, column_gates):
            # One row of padding on top only (the past side): the convolution never looks below.
            return column_gates + conv1d_by_matmul(hidden_previous, kernel, 1, 0)

        def left_and_above_cells(cell_previous):
            return cell_previous, _shift_down_one_row(cell_previous)

        hidden = lstm_scan(step_gates, zeros, columns, left_and_above_cells)  # (H + W - 1, B, H, h)
        return self.unskew(ops.transpose(hidden, (1, 2, 0, 3)))

    def step_start(self, batch, width):
        conv, gates = self.input_to_state, self.conditioning_units
        input_matrix, input_bias = ops.reshape(conv.kernel, (-1, gates)), in_compute_dtype(conv, conv.bias)
        state_matrix = ops.reshape(self.compute_kernel(self.state_to_state), (2 * self.units, gates))
        row = ops.zeros((batch, width, self.units), self.compute_dtype)
        padded_row = ops.zeros((batch, width + 1, self.units), self.compute_dtype)
        return (input_matrix, input_bias, state_matrix), (row, row, padded_row, padded_row)

    def step(self, weights, state, col, inputs, conditioning=None):
        input_matrix, input_bias, state_matrix = weights
        hidden_above, cell_above, hidden_row, cell_row = state
        gates = add_conditioning(ops.matmul(flat_pixel(inputs), input_matrix) + input_bias, conditioning)
        neighbours = ops.concatenate([rows_at(hidden_above, col, 1)[:, 0], rows_at(hidden_row, col, 1)[:, 0]], axis=-1)
        gates = gates + ops.matmul(neighbours, state_matrix)
        cells = (rows_at(cell_row, col, 1)[:, 0], rows_at(cell_above, col, 1)[:, 0])  # forget gates f^c, f^r
        cell, hidden = lstm_update(gates, cells)
        hidden_row = put_at(hidden_row, col + 1, hidden[:, None])
        cell_row = put_at(cell_row, col + 1, cell[:, None])
        return (hidden_above, cell_above, hidden_row, cell_row), hidden[:, None, None]

    def end_of_row(self, weights, state):
        _, _, hidden_row, cell_row = state
        return (hidden_row[:, 1:], cell_row[:, 1:], hidden_row, cell_row)
