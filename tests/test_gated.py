"""Gated PixelCNN: the vertical mask, the block's arguments, and no blind spot."""

import keras
import numpy as np
import pytest

import pixel_keras as pk
from pixel_keras.layers import GatedBlock, MaskedConv2D
from tests.dependencies import allowed_map, dependency_map
from tests.test_causality import _logits_of_scaled_input, _random_bias
from tests.tiers import slow


def test_vertical_mask_sees_rows_up_to_its_own_whole_and_nothing_below():
    conv = MaskedConv2D(4, 3, "V")
    depends = dependency_map(conv, (4, 5, 2), 1)[..., 0, :, :, 0]  # (i, j, k, l)
    rows, cols = np.meshgrid(np.arange(4), np.arange(5), indexing="ij")
    for i, j in ((2, 2), (0, 0), (3, 4)):
        expected = (rows <= i) & (rows >= i - 1) & (abs(cols - j) <= 1)
        np.testing.assert_array_equal(depends[i, j], expected)


def _context_seen(arch, image_shape, pixel, num_layers):
    """depends[k, l]: the logits of `pixel` (channel 0) depend on input pixel (k, l)."""
    model = pk.build_model(arch, image_shape, 4, num_layers=num_layers, hidden=8)
    _random_bias(model)
    depends = dependency_map(_logits_of_scaled_input(model), image_shape, 1)
    return depends[pixel[0], pixel[1], 0, :, :, 0]


@slow
def test_gated_pixelcnn_has_no_blind_spot_where_pixelcnn_has_one():
    """From the first pixel of the last row, two gated layers see every pixel of the rows above
    within the vertical stack's half-width, 3 (7 x 7 start) + 1 per 3 x 3 layer = 5 columns, and
    nothing beyond; a PixelCNN of the same depth misses the upper right (its blind spot)."""
    image_shape, pixel = (4, 8, 1), (3, 0)
    gated = _context_seen("gated_pixelcnn", image_shape, pixel, num_layers=2)
    columns = np.arange(image_shape[1])[None, :]
    rows = np.arange(image_shape[0])[:, None]
    expected = (rows < pixel[0]) & (columns <= 5)
    np.testing.assert_array_equal(gated, expected)
    pixelcnn = _context_seen("pixelcnn", image_shape, pixel, num_layers=2)
    assert not pixelcnn[2, 4] and not pixelcnn[2, 5], "pixelcnn should miss the upper right of (3, 0)"
    assert not (pixelcnn & ~expected).any()


def test_gated_pixelcnn_sees_the_whole_causal_context_in_rgb():
    """Every earlier pixel and every earlier colour group of the current pixel, nothing else."""
    model = pk.build_model("gated_pixelcnn", (3, 4, 3), 4, num_layers=2, hidden=12)
    _random_bias(model)
    depends = dependency_map(_logits_of_scaled_input(model), (3, 4, 3), 3)
    np.testing.assert_array_equal(depends, allowed_map(3, 4, 3, strict=True))


@pytest.mark.parametrize("kwargs,message", [
    (dict(units=2, color_channels=3), "units=2"),
    (dict(units=4, kernel_size=2), "kernel_size=2"),
    (dict(units=True), "units=True"),
])
def test_gated_block_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GatedBlock(**kwargs)


def test_gated_block_round_trips_its_config():
    block = GatedBlock(6, kernel_size=5, color_channels=3, name="g")
    clone = GatedBlock.from_config(block.get_config())
    assert (clone.units, clone.kernel_size, clone.color_channels, clone.name) == (6, 5, 3, "g")
    vertical, horizontal = block([keras.ops.zeros((1, 3, 3, 6)), keras.ops.zeros((1, 3, 3, 6))])
    assert vertical.shape == horizontal.shape == (1, 3, 3, 6)
