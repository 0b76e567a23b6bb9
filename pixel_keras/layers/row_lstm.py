"""`RowLSTM`: the PixelRNN layer that computes a whole row of LSTM states at once."""

import keras
from keras import ops

from pixel_keras.layers.incremental_step import IncrementalStep, add_conditioning, flat_pixel, put_at, rows_at
from pixel_keras.layers.lstm_cell import CausalLSTMLayer, conv1d_by_matmul, lstm_scan, lstm_update
from pixel_keras.layers.masked_conv import MaskedConv2D


@keras.saving.register_keras_serializable(package="pixel_keras")
class RowLSTM(IncrementalStep, CausalLSTMLayer):
    """Row LSTM (van den Oord et al. 2016, Section 3.1).

    The input-to-state map of every row is one k x 1 convolution along the row with mask B,
    computed for the whole image at once. Rows are then scanned top to bottom: the state-to-state
    part is an unmasked width-k 1-D convolution of the previous row's hidden state. The context is
    a triangle above the pixel plus the pixels to its left.

    Args:
        units: hidden features h per pixel (the layer outputs h features).
        kernel_size: odd width k of both 1-D convolutions.
        color_channels: colour groups of the image (1 grayscale, 3 RGB).
        kernel_initializer: initializer of both kernels.
        **kwargs: base `keras.layers.Layer` arguments.

    Incremental step (`pixel_keras.layers.incremental_step`): the gates at one pixel from its 1 x k
    input window and the k hidden states above; state: the input-to-state window, the previous
    row's h (zero-padded by k // 2 on both sides) and c, and the current row's h and c, which
    become the previous row's at the end of the row.
    """

    def __init__(self, units, kernel_size=3, color_channels=1, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(units, color_channels, kernel_initializer, **kwargs)
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"Expected an odd positive integer kernel_size. Received kernel_size={kernel_size!r}.")
        self.kernel_size = kernel_size
        self.input_to_state = MaskedConv2D(
            4 * units, (1, kernel_size), mask_type="B", color_channels=color_channels,
            output_blocks=4, kernel_initializer=self.kernel_initializer, name="input_to_state", dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        self.input_to_state.build(input_shape)
        self.state_to_state = self.add_weight(
            name="state_to_state", shape=(self.kernel_size, self.units, 4 * self.units),
            initializer=self.kernel_initializer,
        )

    def call(self, inputs, conditioning=None):
        """`conditioning`: optional bias broadcastable to (batch, H, W, 4h), e.g. from
        `Conditioning`, added to the input-to-state map before the scan."""
        input_gates = self.input_to_state(inputs)
        if conditioning is not None:
            input_gates = input_gates + conditioning
        input_gates = ops.transpose(input_gates, (1, 0, 2, 3))  # (H, B, W, 4h)
        batch, width = ops.shape(inputs)[0], ops.shape(inputs)[2]
        zeros = ops.zeros((batch, width, self.units), dtype=self.compute_dtype)

        kernel = self.compute_kernel(self.state_to_state)
        half = self.kernel_size // 2  # "same" along the row: the whole previous row is the past

        def step_gates(hidden_above, row_gates):
            return row_gates + conv1d_by_matmul(hidden_above, kernel, half, half)

        hidden_rows = lstm_scan(step_gates, zeros, input_gates)
        return ops.transpose(hidden_rows, (1, 0, 2, 3))

    def step_start(self, batch, width):
        state_matrix = ops.reshape(self.compute_kernel(self.state_to_state), (-1, 4 * self.units))
        hidden = ops.zeros((batch, width + 2 * (self.kernel_size // 2), self.units), self.compute_dtype)
        cell = ops.zeros((batch, width, self.units), self.compute_dtype)
        conv_weights, conv_state = self.input_to_state.step_start(batch, width)
        return (conv_weights, state_matrix), (conv_state, hidden, cell, hidden, cell)

    def step(self, weights, state, col, inputs, conditioning=None):
        conv_weights, state_matrix = weights
        conv_state, hidden_above, cell_above, hidden_row, cell_row = state
        conv_state, input_gates = self.input_to_state.step_apply(conv_weights, conv_state, col, inputs)
        gates = add_conditioning(flat_pixel(input_gates), conditioning)
        above = rows_at(hidden_above, col, self.kernel_size)  # positions col - k // 2 .. col + k // 2
        gates = gates + ops.matmul(ops.reshape(above, (-1, state_matrix.shape[0])), state_matrix)
        cell, hidden = lstm_update(gates, (rows_at(cell_above, col, 1)[:, 0],))
        hidden_row = put_at(hidden_row, col + self.kernel_size // 2, hidden[:, None])
        cell_row = put_at(cell_row, col, cell[:, None])
        return (conv_state, hidden_above, cell_above, hidden_row, cell_row), hidden[:, None, None]

    def end_of_row(self, weights, state):
        conv_state, _, _, hidden_row, cell_row = state
        return (self.input_to_state.end_of_row(weights[0], conv_state), hidden_row, cell_row, hidden_row, cell_row)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}
