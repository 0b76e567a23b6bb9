"""The LSTM cell update and the scan shared by `RowLSTM` and `DiagonalBiLSTM`."""

import tensorflow as tf
from keras import ops


def lstm_update(gates, cell):
    """One LSTM step from pre-activations.

    Args:
        gates: pre-activations with 4 * units features on the last axis, in the order o, f, i, g
            (the order `MaskedConv2D(output_blocks=4)` groups colours in).
        cell: previous cell state with `units` features.

    Returns:
        (new cell state, new hidden state). o, f, i use a sigmoid; the content gate g uses tanh.
    """
    output_gate, forget_gate, input_gate, content = ops.split(gates, 4, axis=-1)
    cell = ops.sigmoid(forget_gate) * cell + ops.sigmoid(input_gate) * ops.tanh(content)
    hidden = ops.sigmoid(output_gate) * ops.tanh(cell)
    return cell, hidden


def check_units(units, color_channels):
    """Raise a ValueError unless `units` is a positive integer with a feature per colour group."""
    if not isinstance(units, int) or units < color_channels:
        raise ValueError(
            f"Expected units to be an integer >= color_channels={color_channels}. Received units={units!r}."
        )


def lstm_scan(step_gates, initial, inputs):
    """Run an LSTM along the first axis of `inputs`; returns the stacked hidden states.

    `tf.scan` rather than `keras.ops.scan`: the TensorFlow backend's `ops.scan` builds a while loop
    without `maximum_iterations`, whose gradient XLA (`jit_compile=True`) refuses to compile.

    Args:
        step_gates: function (previous hidden state, inputs[t]) -> gate pre-activations at step t.
        initial: zero state, the shape of one step's hidden state.
        inputs: tensor scanned over its first axis.
    """

    def step(state, step_inputs):
        cell, hidden = state
        return lstm_update(step_gates(hidden, step_inputs), cell)

    _, hidden = tf.scan(step, inputs, initializer=(initial, initial))
    return hidden
