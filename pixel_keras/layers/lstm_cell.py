"""What the PixelRNN layers (Row LSTM, Diagonal BiLSTM, Spatial LSTM) share: cell update, scan, base."""

import keras
from keras import ops

from pixel_keras import backend


def lstm_update(gates, cells):
    """One LSTM step from pre-activations, with one forget gate per previous cell state.

    A 1-D LSTM has one previous cell; the Spatial LSTM (a 2-D LSTM) has two, its left and upper
    neighbours', each with its own forget gate: c = f_1 * c_1 + ... + f_k * c_k + i * g.

    Args:
        gates: pre-activations with (3 + k) * units features on the last axis, in the order
            o, f_1 .. f_k, i, g (blocks that `MaskedConv2D(output_blocks=3 + k)` groups colours in).
        cells: tuple of the k previous cell states, each with `units` features.

    Returns:
        (new cell state, new hidden state). o, f, i use a sigmoid; the content gate g uses tanh.
    """
    output_gate, *forget_gates, input_gate, content = ops.split(gates, 3 + len(cells), axis=-1)
    cell = ops.sigmoid(input_gate) * ops.tanh(content)
    for forget_gate, previous in zip(forget_gates, cells):
        cell = ops.sigmoid(forget_gate) * previous + cell
    hidden = ops.sigmoid(output_gate) * ops.tanh(cell)
    return cell, hidden


def conv1d_by_matmul(inputs, kernel, pad_before, pad_after):
    """A stride-1 1-D convolution as one matmul of `k` shifted copies of the input.

    Inside a scan this is much faster than a convolution op under XLA on CPU, where each
    iteration's small convolution runs through a slow generic kernel; it computes the same sum.

    Args:
        inputs: (..., length, features), convolved along `length`.
        kernel: (..., k, features, out_features); its leading axes, if any, are the input's first
            axes (one kernel per direction of a stacked scan). Tap t reads position i - pad_before + t.
        pad_before, pad_after: zero positions added before / after, with
            pad_before + pad_after = k - 1 so the output has the input's length.
    """
    taps, features, out_features = kernel.shape[-3:]
    length = ops.shape(inputs)[-2]
    padding = ((0, 0),) * (len(inputs.shape) - 2) + ((pad_before, pad_after), (0, 0))
    padded = ops.pad(inputs, padding)
    shifted = ops.concatenate([padded[..., t:t + length, :] for t in range(taps)], axis=-1)
    # One plain (batched) matmul: rows of all positions against each leading kernel, no broadcasting.
    leading = tuple(kernel.shape[:-3])
    rows = ops.reshape(shifted, leading + (-1, taps * features))
    out = ops.matmul(rows, ops.reshape(kernel, leading + (taps * features, out_features)))
    return ops.reshape(out, tuple(ops.shape(shifted)[:-1]) + (out_features,))


def lstm_scan(step_gates, initial, inputs, neighbour_cells=lambda cell: (cell,)):
    """Run an LSTM along the first axis of `inputs`; returns the stacked hidden states.

    Through `pixel_keras.backend.scan` (`tf.scan` on TensorFlow, for XLA's bounded loops). The step
    runs in the gates' dtype: under a mixed-precision policy the caller's `step_gates` reads its
    kernels cast to the compute dtype (`compute_kernel`), never a float32 variable as is.

    Args:
        step_gates: function (previous hidden state, inputs[t]) -> gate pre-activations at step t.
        initial: zero state, the shape of one step's hidden state.
        inputs: tensor scanned over its first axis.
        neighbour_cells: function (previous step's cell state) -> tuple of the cell states that the
            step's forget gates multiply, in gate order (default: the previous cell state alone).
    """

    def step(state, step_inputs):
        cell, hidden = state
        return lstm_update(step_gates(hidden, step_inputs), neighbour_cells(cell))

    _, hidden = backend.scan(step, (initial, initial), inputs)
    return hidden


class CausalLSTMLayer(keras.layers.Layer):
    """Base of the PixelRNN layers: `units` hidden features per pixel, colour groups, initializer.

    Args:
        units: hidden features h per pixel (the layer outputs h features).
        color_channels: colour groups of the image (1 grayscale, 3 RGB).
        kernel_initializer: initializer of the layer's kernels.
        **kwargs: base `keras.layers.Layer` arguments.
    """

    def __init__(self, units, color_channels=1, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units < color_channels:
            raise ValueError(
                f"Expected units to be an integer >= color_channels={color_channels}. Received units={units!r}."
            )
        self.units = units
        self.color_channels = color_channels
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def compute_kernel(self, variable):
        """A float32 kernel variable in the compute dtype (under a mixed-precision policy).

        Cast explicitly rather than left to `__call__`'s autocast scope: the incremental sampler's
        steps read the state-to-state kernels outside any layer call, and a scan step then closes
        over one tensor of the gates' dtype (not a variable) on every backend.
        """
        return ops.cast(variable, self.compute_dtype)

    @property
    def conditioning_units(self):
        """Features of the optional `conditioning` bias of `call`: the input-to-state map's (o, f, i, g).
        A layer with more gates overrides this."""
        return 4 * self.units

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            color_channels=self.color_channels,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
