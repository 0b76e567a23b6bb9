"""`RowLSTM`: the PixelRNN layer that computes a whole row of LSTM states at once."""

import keras
from keras import ops

from pixel_keras.layers.lstm_cell import CausalLSTMLayer, conv1d_by_matmul, lstm_scan
from pixel_keras.layers.masked_conv import MaskedConv2D


@keras.saving.register_keras_serializable(package="pixel_keras")
class RowLSTM(CausalLSTMLayer):
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

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}
