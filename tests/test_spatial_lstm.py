"""Spatial LSTM (RIDE): a pixel-by-pixel numpy reference and the exact receptive field of one layer."""

import keras
import numpy as np
import pytest

from pixel_keras.layers import SpatialLSTM
from tests.dependencies import dependency_map
from tests.tiers import slow_except


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _random_weights(layer):
    """Random kernels and biases (a zero bias could hide a swapped gate)."""
    rng = np.random.default_rng(1)
    for weight in layer.weights:
        weight.assign(rng.normal(0, 0.5, weight.shape).astype("float32"))


@pytest.mark.parametrize("shape,conditioned", [((2, 4, 5, 4), False), ((2, 5, 3, 4), False), ((2, 3, 4, 4), True)])
def test_spatial_lstm_matches_reference(shape, conditioned):
    """Unskewed, written from Theis & Bethge's equations: c_ij = g i + c_{i,j-1} f^c + c_{i-1,j} f^r,
    h_ij = o tanh(c_ij), the gates reading the input at (i, j), h to the left and h above (and an
    optional per-image conditioning bias added to the input-to-state map)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype("float32")
    layer = SpatialLSTM(3)
    layer.build(x.shape)
    _random_weights(layer)
    bias = rng.normal(size=(shape[0], 1, 1, layer.conditioning_units)).astype("float32") if conditioned else None
    out = keras.ops.convert_to_numpy(layer(x, conditioning=bias))
    input_gates = keras.ops.convert_to_numpy(layer.input_to_state(x)) + (0 if bias is None else bias)
    kernel = keras.ops.convert_to_numpy(layer.state_to_state)  # tap 0: h above, tap 1: h to the left
    batch, height, width, _ = x.shape
    # Padded by one row on top and one column on the left: neighbours off the image are zero.
    cell = np.zeros((batch, height + 1, width + 1, 3))
    hidden = np.zeros((batch, height + 1, width + 1, 3))
    for row in range(1, height + 1):
        for col in range(1, width + 1):
            above, left = hidden[:, row - 1, col], hidden[:, row, col - 1]
            gates = input_gates[:, row - 1, col - 1] + above @ kernel[0] + left @ kernel[1]
            o, f_left, f_above, i, g = np.split(gates, 5, axis=-1)
            cell[:, row, col] = (np.tanh(g) * _sigmoid(i) + cell[:, row, col - 1] * _sigmoid(f_left)
                                 + cell[:, row - 1, col] * _sigmoid(f_above))
            hidden[:, row, col] = _sigmoid(o) * np.tanh(cell[:, row, col])
    np.testing.assert_allclose(out, hidden[:, 1:, 1:], atol=1e-5)


def _quadrant_above_left(height, width, color_channels):
    """expected[i, j, g_out, k, l, g_in]: rows k <= i and columns l <= j, every group, except the
    pixel itself, where group g_out sees its own pixel's groups g_in <= g_out (mask B)."""
    i, j, g_out, k, l, g_in = np.meshgrid(
        np.arange(height), np.arange(width), np.arange(color_channels),
        np.arange(height), np.arange(width), np.arange(color_channels), indexing="ij",
    )
    same_pixel = (k == i) & (l == j)
    return ((k <= i) & (l <= j) & ~same_pixel) | (same_pixel & (g_in <= g_out))


@pytest.mark.parametrize("color_channels,height,width", slow_except([(1, 4, 5), (3, 4, 3)], (3, 4, 3)))
def test_one_layer_sees_exactly_the_quadrant_above_left(color_channels, height, width):
    """Exact Jacobians: everything up and to the left is seen (the far top-left corner included),
    nothing to the right in rows above (the Diagonal BiLSTM sees that, the Spatial LSTM does not)."""
    layer = SpatialLSTM(2 * color_channels, color_channels=color_channels)
    layer.build((None, height, width, 2 * color_channels))
    _random_weights(layer)
    depends = dependency_map(layer, (height, width, 2 * color_channels), color_channels)
    np.testing.assert_array_equal(depends, _quadrant_above_left(height, width, color_channels))
