"""The LSTM cell update shared by `RowLSTM` and `DiagonalBiLSTM`."""

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
