"""`DiagonalBiLSTM`: the PixelRNN layer whose two diagonal scans see the whole causal context."""

import keras
from keras import ops

from pixel_keras.layers.incremental_step import (IncrementalStep, add_conditioning, flat_pixel, in_compute_dtype,
                                                 put_at, rows_at)
from pixel_keras.layers.lstm_cell import CausalLSTMLayer, conv1d_by_matmul, lstm_scan, lstm_update
from pixel_keras.layers.masked_conv import MaskedConv2D
from pixel_keras.layers.skew import Skew, Unskew


@keras.saving.register_keras_serializable(package="pixel_keras")
class DiagonalBiLSTM(IncrementalStep, CausalLSTMLayer):
    """Diagonal BiLSTM (van den Oord et al. 2016, Section 3.2).

    Each direction: a 1 x 1 input-to-state convolution with mask B, skew the map so that diagonals
    become columns, scan the columns left to right with a 2 x 1 state-to-state convolution over the
    previous column (the pixel above and the pixel to the left), unskew. The second direction runs
    on the width-mirrored map; its output is mirrored back and shifted down one row (it would
    otherwise see the pixels to the right in the current row) before it is added to the first.

    Args:
        units: hidden features h per pixel (the layer outputs h features).
        color_channels: colour groups of the image (1 grayscale, 3 RGB).
        kernel_initializer: initializer of the kernels.
        **kwargs: base `keras.layers.Layer` arguments.

    Incremental step (`pixel_keras.layers.incremental_step`): left to right, the skewed scan's
    state at (r, c) comes from (r - 1, c) (tap 0) and (r, c - 1) (tap 1, and the cell state): a
    step advances it one pixel; positions of the skewed map off the image have zero state, exactly
    the zero padding used here. The right-to-left direction at (r, c) reads (r - 1, c) and
    (r, c + 1); its output is added shifted down a row, so a step reads only the finished row above,
    and `end_of_row` scans row r right to left once the layer's input row r is final. State: h of
    the previous row (left to right), the current row's h and c (one zero column in front: the left
    neighbour of column 0), the current row's right-to-left input gates, and the right-to-left h of
    the previous row.
    """

    def __init__(self, units, color_channels=1, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(units, color_channels, kernel_initializer, **kwargs)
        self.skew = Skew(name="skew", dtype=self.dtype_policy)
        self.unskew = Unskew(name="unskew", dtype=self.dtype_policy)
        self.input_to_state = [
            MaskedConv2D(
                4 * units, 1, mask_type="B", color_channels=color_channels, output_blocks=4,
                kernel_initializer=self.kernel_initializer, name=f"input_to_state_{direction}",
                dtype=self.dtype_policy,
            )
            for direction in ("left", "right")
        ]

    def build(self, input_shape):
        for conv in self.input_to_state:
            conv.build(input_shape)
        # A 2 x 1 convolution down the previous skewed column: tap 0 reads the pixel above, tap 1
        # the pixel to the left.
        self.state_to_state = [
            self.add_weight(
                name=f"state_to_state_{direction}", shape=(2, self.units, 4 * self.units),
                initializer=self.kernel_initializer,
            )
            for direction in ("left", "right")
        ]

    def call(self, inputs, conditioning=None):
        """`conditioning`: optional bias broadcastable to (batch, H, W, 4h), e.g. from
        `Conditioning`, added to both directions' input-to-state maps before the scan."""
        # Both directions run in one scan (stacked on a leading axis, each with its own kernel):
        # half the sequential steps of two scans.
        images = (inputs, ops.flip(inputs, axis=2))
        input_gates = [conv(image) for image, conv in zip(images, self.input_to_state)]
        if conditioning is not None:  # the right-to-left direction sees the map mirrored, like its input
            input_gates = [input_gates[0] + conditioning, input_gates[1] + ops.flip(conditioning, axis=2)]
        skewed = ops.stack([self.skew(gates) for gates in input_gates])
        columns = ops.transpose(skewed, (3, 0, 1, 2, 4))  # (2W - 1 for square, 2, B, H, 4h)
        kernels = ops.stack([self.compute_kernel(kernel) for kernel in self.state_to_state])  # (2, 2, h, 4h)
        zeros = ops.zeros((2, ops.shape(inputs)[0], inputs.shape[1], self.units), dtype=self.compute_dtype)

        def step_gates(hidden_previous, column_gates):
            # Row r of the previous skewed column holds the pixel to the left, row r - 1 the pixel
            # above: pad one row on top only (the past side) so the 2 x 1 convolution never looks below.
            return column_gates + conv1d_by_matmul(hidden_previous, kernels, 1, 0)

        hidden = ops.transpose(lstm_scan(step_gates, zeros, columns), (1, 2, 3, 0, 4))  # (2, B, H, 2W - 1, h)
        left = self.unskew(hidden[0])
        right = ops.flip(self.unskew(hidden[1]), axis=2)
        right_shifted_down = ops.pad(right[:, :-1], ((0, 0), (1, 0), (0, 0), (0, 0)))
        return left + right_shifted_down

    def step_start(self, batch, width):
        input_matrices = [ops.reshape(conv.kernel, (-1, 4 * self.units)) for conv in self.input_to_state]
        input_biases = [in_compute_dtype(conv, conv.bias) for conv in self.input_to_state]
        state_matrices = [ops.reshape(self.compute_kernel(kernel), (2 * self.units, 4 * self.units))
                          for kernel in self.state_to_state]
        row = ops.zeros((batch, width, self.units), self.compute_dtype)
        padded_row = ops.zeros((batch, width + 1, self.units), self.compute_dtype)
        gates = ops.zeros((batch, width, 4 * self.units), self.compute_dtype)
        return (input_matrices, input_biases, state_matrices), (row, padded_row, padded_row, gates, row)

    def step(self, weights, state, col, inputs, conditioning=None):
        input_matrices, input_biases, state_matrices = weights
        hidden_above, hidden_row, cell_row, right_gates, right_above = state
        pixel = flat_pixel(inputs)
        left_gates, right_input = [add_conditioning(ops.matmul(pixel, matrix) + bias, conditioning)
                                   for matrix, bias in zip(input_matrices, input_biases)]
        right_gates = put_at(right_gates, col, right_input[:, None])
        neighbours = ops.concatenate([rows_at(hidden_above, col, 1)[:, 0], rows_at(hidden_row, col, 1)[:, 0]], axis=-1)
        gates = left_gates + ops.matmul(neighbours, state_matrices[0])
        cell, hidden = lstm_update(gates, (rows_at(cell_row, col, 1)[:, 0],))
        hidden_row = put_at(hidden_row, col + 1, hidden[:, None])
        cell_row = put_at(cell_row, col + 1, cell[:, None])
        out = hidden + rows_at(right_above, col, 1)[:, 0]  # right to left, shifted down one row
        return (hidden_above, hidden_row, cell_row, right_gates, right_above), out[:, None, None]

    def end_of_row(self, weights, state):
        """The right-to-left scan of the finished row, which the next row reads."""
        state_matrix = weights[2][1]
        hidden_above, hidden_row, cell_row, right_gates, right_above = state
        width = right_above.shape[1]

        def body(step, hidden_right, cell_right, right_row):
            col = width - 1 - step
            neighbours = ops.concatenate([rows_at(right_above, col, 1)[:, 0], hidden_right], axis=-1)
            gates = rows_at(right_gates, col, 1)[:, 0] + ops.matmul(neighbours, state_matrix)
            cell_right, hidden_right = lstm_update(gates, (cell_right,))
            return step + 1, hidden_right, cell_right, put_at(right_row, col, hidden_right[:, None])

        zeros = ops.zeros_like(right_above[:, 0])
        _, _, _, right_row = ops.while_loop(lambda step, *_: step < width, body,
                                            (ops.convert_to_tensor(0), zeros, zeros, ops.zeros_like(right_above)),
                                            maximum_iterations=width)
        return (hidden_row[:, 1:], hidden_row, cell_row, right_gates, right_row)
