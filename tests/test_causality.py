"""Causality: no output depends on an input at or after it in raster and colour order."""

import keras
import numpy as np
import pytest

import pixel_keras as pk
from pixel_keras.layers import DiagonalBiLSTM, MaskedConv2D, RowLSTM, SpatialLSTM
from tests.dependencies import allowed_map, assert_causal, dependency_map
from tests.tiers import slow, slow_except


def _random_bias(layer_or_model):
    """Give every bias random values so a zero-initialised bias cannot hide a dependency."""
    for weight in layer_or_model.weights:
        if "bias" in weight.path:
            weight.assign(np.random.default_rng(1).normal(0, 0.1, weight.shape).astype("float32"))


@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize("color_channels,kernel", [(1, 3), (3, 3), (3, 5), (1, (1, 3))])
def test_masked_conv_sees_only_the_past(mask_type, color_channels, kernel):
    in_features = color_channels * 2 if mask_type == "B" else color_channels
    conv = MaskedConv2D(6, kernel, mask_type=mask_type, color_channels=color_channels)
    depends = dependency_map(conv, (5, 5, in_features), color_channels)
    allowed = allowed_map(5, 5, color_channels, strict=mask_type == "A")
    assert not (depends & ~allowed).any()
    # The centre pixel's allowed groups are really connected (mask not all zero there).
    centre = depends[2, 2, :, 2, 2, :]
    expected = np.tril(np.ones((color_channels, color_channels), bool), k=-1 if mask_type == "A" else 0)
    np.testing.assert_array_equal(centre, expected)


def test_mask_a_and_b_differ_exactly_on_the_own_group():
    a = MaskedConv2D(3, 3, "A", color_channels=3)
    b = MaskedConv2D(3, 3, "B", color_channels=3)
    a.build((None, 4, 4, 3))
    b.build((None, 4, 4, 3))
    difference = b.mask - a.mask
    assert difference.sum() == 3 and np.all(difference[1, 1] == np.eye(3))


# Quick tier: the RGB case of the two layers whose models' causality is slow (Row LSTM's is quick).
@pytest.mark.parametrize("color_channels", slow_except([1, 3], 3))
@pytest.mark.parametrize("layer_cls", slow_except([RowLSTM, DiagonalBiLSTM, SpatialLSTM], DiagonalBiLSTM, SpatialLSTM))
def test_recurrent_layers_are_causal(layer_cls, color_channels):
    layer = layer_cls(3 * color_channels, color_channels=color_channels)
    layer.build((None, 5, 5, 2 * color_channels))
    _random_bias(layer)
    depends = dependency_map(layer, (5, 5, 2 * color_channels), color_channels)
    assert_causal(depends, strict=False)


@slow
def test_diagonal_bilstm_sees_the_whole_context_row_lstm_a_triangle():
    """The paper's receptive fields: Diagonal BiLSTM sees every earlier pixel (and its own, mask B);
    the Row LSTM's triangle misses the far upper right."""
    seen = {}
    for layer in (RowLSTM(2), DiagonalBiLSTM(2)):
        layer.build((None, 5, 5, 2))
        _random_bias(layer)
        depends = dependency_map(layer, (5, 5, 2), 1)
        seen[type(layer).__name__] = depends[2, 0, 0, :, :, 0]
    causal_context = allowed_map(5, 5, 1, strict=False)[2, 0, 0, :, :, 0]
    np.testing.assert_array_equal(seen["DiagonalBiLSTM"], causal_context)
    assert not seen["RowLSTM"][0, 4], "row LSTM should not see (0, 4) from (2, 0) with k = 3"


def _logits_of_scaled_input(model):
    """The model from its float input (after integer scaling) to logits, so it can be differentiated."""
    return keras.Model(model.get_layer("scale_pixels").output, model.output)


@pytest.mark.parametrize(
    "image_shape,num_levels,skip",
    slow_except([((5, 5, 1), 256, False), ((5, 5, 3), 4, False), ((5, 5, 1), 2, True)], ((5, 5, 3), 4, False)),
)
@pytest.mark.parametrize("arch", slow_except(pk.arch_names(), "pixelcnn", "gated_pixelcnn", "row_lstm"))
def test_models_are_causal(arch, image_shape, num_levels, skip):
    # The same stream width for every arch: gated_pixelcnn's stacks have h features, the others' 2h.
    hidden = 12 if arch == "gated_pixelcnn" else 6
    # Fixed initial weights: with 4 random inputs and 4 features per colour group, some draws leave a
    # corner pixel's ReLUs off for every input (a missed dependency, never a leak); which draws do
    # depends on the backend's RNG and on the tests run before, so the weights are seeded.
    keras.utils.set_random_seed(0)
    model = pk.build_model(arch, image_shape, num_levels, num_layers=2, hidden=hidden, skip=skip)
    _random_bias(model)
    depends = dependency_map(_logits_of_scaled_input(model), image_shape, image_shape[2])
    assert_causal(depends, strict=True)
