"""Layer outputs against plain numpy references written pixel by pixel, and layer contracts."""

import keras
import numpy as np
import pytest

from pixel_keras.layers import DiagonalBiLSTM, MaskedConv2D, RowLSTM, Skew, SpatialLSTM, Unskew


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _lstm(gates, cell):
    o, f, i, g = np.split(gates, 4, axis=-1)
    cell = _sigmoid(f) * cell + _sigmoid(i) * np.tanh(g)
    return cell, _sigmoid(o) * np.tanh(cell)


def _random_input(shape):
    return np.random.default_rng(0).normal(size=shape).astype("float32")


def test_row_lstm_matches_reference():
    x = _random_input((2, 4, 5, 4))
    layer = RowLSTM(3, kernel_size=3)
    out = keras.ops.convert_to_numpy(layer(x))
    input_gates = keras.ops.convert_to_numpy(layer.input_to_state(x))
    kernel = keras.ops.convert_to_numpy(layer.state_to_state)  # (k, h, 4h)
    batch, height, width, _ = x.shape
    cell = np.zeros((batch, width, 3))
    hidden = np.zeros((batch, width, 3))
    for row in range(height):
        padded = np.pad(hidden, ((0, 0), (1, 1), (0, 0)))
        state_gates = sum(padded[:, tap:tap + width] @ kernel[tap] for tap in range(3))
        cell, hidden = _lstm(input_gates[:, row] + state_gates, cell)
        np.testing.assert_allclose(out[:, row], hidden, atol=1e-5)


def test_diagonal_bilstm_matches_reference():
    """Unskewed reference: the left scan's state at (i, j) reads h above and h, c to the left; the
    right scan reads h above and h, c to the right, and its output is added one row lower."""
    x = _random_input((2, 4, 5, 4))
    layer = DiagonalBiLSTM(3)
    out = keras.ops.convert_to_numpy(layer(x))
    batch, height, width, _ = x.shape
    directions = []
    for conv, kernel, step in zip(layer.input_to_state, layer.state_to_state, (-1, 1)):
        input_gates = keras.ops.convert_to_numpy(conv(x))
        kernel = keras.ops.convert_to_numpy(kernel)
        # Padded by one row on top and one column each side, so neighbours off the image are zero.
        cell = np.zeros((batch, height + 1, width + 2, 3))
        hidden = np.zeros((batch, height + 1, width + 2, 3))
        for row in range(1, height + 1):
            for col in (range(1, width + 1) if step == -1 else range(width, 0, -1)):
                above, beside = hidden[:, row - 1, col], hidden[:, row, col + step]
                gates = input_gates[:, row - 1, col - 1] + above @ kernel[0] + beside @ kernel[1]
                cell[:, row, col], hidden[:, row, col] = _lstm(gates, cell[:, row, col + step])
        directions.append(hidden[:, 1:, 1:-1])
    left, right = directions
    expected = left + np.pad(right[:, :-1], ((0, 0), (1, 0), (0, 0), (0, 0)))
    np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("height,width", [(1, 1), (3, 3), (3, 6)])
def test_skew_shifts_row_i_right_by_i_and_unskew_inverts_it(height, width):
    x = _random_input((2, height, width, 3))
    skewed = keras.ops.convert_to_numpy(Skew()(x))
    assert skewed.shape == (2, height, width + height - 1, 3)
    for row in range(height):
        np.testing.assert_array_equal(skewed[:, row, row:row + width], x[:, row])
        assert not skewed[:, row, :row].any() and not skewed[:, row, row + width:].any()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(Unskew()(skewed)), x)


def test_masked_conv_does_not_mutate_its_kernel_and_masks_in_the_forward_pass():
    conv = MaskedConv2D(2, 3, "A")
    conv.build((None, 4, 4, 1))
    stored = keras.ops.convert_to_numpy(conv._kernel).copy()
    conv(_random_input((1, 4, 4, 1)))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(conv._kernel), stored)
    assert stored[1, 2].any(), "the stored kernel keeps its (masked-out) future taps"
    assert not keras.ops.convert_to_numpy(conv.kernel)[1, 2].any(), "the kernel read by call is masked"


@pytest.mark.parametrize("layer", [
    MaskedConv2D(6, (3, 5), "A", color_channels=3, output_blocks=2),
    RowLSTM(6, kernel_size=5, color_channels=3),
    DiagonalBiLSTM(3, color_channels=3),
    SpatialLSTM(3, color_channels=3),
])
def test_layers_round_trip_through_config(layer):
    x = _random_input((1, 4, 4, 6))
    out = keras.ops.convert_to_numpy(layer(x))
    clone = type(layer).from_config(layer.get_config())
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(x)), out, atol=1e-6)


@pytest.mark.parametrize("make,message", [
    (lambda: MaskedConv2D(4, 2), "odd kernel_size"),
    (lambda: MaskedConv2D(4, 3, mask_type="C"), "mask_type"),
    (lambda: MaskedConv2D(4, 3, padding="valid"), "padding"),
    (lambda: MaskedConv2D(4, 3, color_channels=0), "color_channels"),
    (lambda: MaskedConv2D(6, 3, output_blocks=4), "output_blocks"),
    (lambda: RowLSTM(0), "units"),
    (lambda: RowLSTM(4, kernel_size=2), "kernel_size"),
    (lambda: DiagonalBiLSTM(2, color_channels=3), "units"),
    (lambda: SpatialLSTM(2, color_channels=3), "units"),
])
def test_bad_layer_arguments_name_what_was_received(make, message):
    with pytest.raises(ValueError, match=message):
        make()
