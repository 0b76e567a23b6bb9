"""The fast (incremental) sampler computes the full network's logits and draws the plain loop's values."""

import itertools
import warnings

import keras
import numpy as np
import pytest

import pixel_keras as pk
from pixel_keras.incremental import IncrementalModel, PointwiseRule, register_rule
from pixel_keras.layers import MaskedConv2D
from pixel_keras.layers.conditioning import Conditioning
from pixel_keras.layers.incremental_step import IncrementalStep
from pixel_keras.multiscale import small_positions
from pixel_keras.backend import uniform
from pixel_keras.sampling import Sampler
from tests.tiers import slow, slow_except
from tests.tiny_cases import conditional_archs

FAST_ARCHS = pk.arch_names()  # every registered arch: a new one must sample fast, exactly
CONDITIONAL_ARCHS = conditional_archs()  # the multi-scale and class-conditional tests

# (image_shape, num_levels): grayscale, RGB and binary.
KINDS = {"gray": ((3, 4, 1), 4), "rgb": ((2, 3, 3), 5), "binary": ((3, 3, 1), 2)}


def _sharp_model(arch, image_shape, num_levels, **kwargs):
    """Two small layers with a scaled-up head, so that logits are far from zero."""
    keras.utils.set_random_seed(0)
    model = pk.build_model(arch, image_shape, num_levels, num_layers=2, hidden=6, **kwargs)
    head = model.get_layer("head_logits")
    head.set_weights([w * 20.0 for w in head.get_weights()])
    return model


def _conditional_model(image_shape, num_levels, num_classes=3):
    """A hand-built class-conditional model: a label bias added after the first convolution."""
    images = keras.Input(image_shape, dtype="int32", name="images")
    labels = keras.Input((), dtype="int32", name="labels")
    x = keras.layers.Rescaling(2.0 / (num_levels - 1), offset=-1.0)(images)
    x = MaskedConv2D(6, 3, "A", image_shape[-1])(x)
    x = keras.layers.Add()([x, Conditioning(6, num_classes)(labels)])
    x = keras.layers.ReLU()(x)
    x = MaskedConv2D(image_shape[-1] * num_levels, 1, "B", image_shape[-1],
                     kernel_initializer=keras.initializers.RandomNormal(stddev=3.0))(x)
    logits = keras.layers.Reshape(image_shape + (num_levels,))(x)
    return keras.Model([images, labels], logits)


def _inputs(images, labels):
    return images if labels is None else [images, labels]


def _full_network_logits(model, images, labels=None, keep=None):
    """Logits of the full network at each sub-pixel, given only the values before it in `images`
    (later values zeroed, except at the pixels where `keep` (H, W) is True): the conditionals the
    samplers must use."""
    batch, height, width, channels = images.shape
    flat = images.reshape(batch, -1)
    keep = np.zeros(flat.shape[1], bool) if keep is None else np.repeat(np.ravel(keep), channels)
    partials = []
    for index in range(height * width * channels):
        partial = flat.copy()
        partial[:, index:] = np.where(keep[index:], flat[:, index:], 0)
        partials.append(partial.reshape(images.shape))
    tiled = None if labels is None else np.tile(labels, height * width * channels)
    full = np.asarray(model(_inputs(np.concatenate(partials), tiled), training=False))
    full = full.reshape((height * width * channels, batch) + full.shape[1:])
    out = np.empty((batch, height * width * channels) + full.shape[5:], np.float32)
    for index, (row, col, channel) in enumerate(itertools.product(range(height), range(width), range(channels))):
        out[:, index] = full[index, :, row, col, channel]
    return out.reshape((batch, height, width, channels) + full.shape[5:])


def _check_logits(model, image_shape, num_levels, labels=None, logits_of=_full_network_logits):
    rng = np.random.default_rng(0)
    images = rng.integers(0, num_levels, (2,) + image_shape)  # the unknown values are never read
    known = rng.random(images.shape) < 0.3
    filled, logits = Sampler(model).fill_with_logits(images, known, seed=5, labels=labels)
    np.testing.assert_array_equal(filled[known], images[known])
    expected = logits_of(model, filled, labels)
    scale = np.abs(expected).max()
    assert scale > 1.0  # a check at the scale of real logits
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-5 * scale)


# Quick tier: RGB for the two convolutional archs (colour order); every arch's fast == plain is quick below.
@pytest.mark.parametrize("arch", slow_except(FAST_ARCHS, "pixelcnn", "gated_pixelcnn"))
@pytest.mark.parametrize("kind", slow_except(list(KINDS), "rgb"))
def test_fast_logits_equal_full_network_at_every_step(arch, kind):
    image_shape, num_levels = KINDS[kind]
    _check_logits(_sharp_model(arch, image_shape, num_levels), image_shape, num_levels)


@slow
def test_fast_logits_of_a_conditional_model():
    model = _conditional_model((3, 3, 3), 4)
    _check_logits(model, (3, 3, 3), 4, labels=np.array([2, 0], np.int32))


def _assert_same_up_to_boundaries(fast, plain, model, seed, num_levels, labels=None,
                                  logits_of=_full_network_logits):
    """Fast and plain draws agree except where the uniform lies within 1e-4 of a CDF boundary of
    the conditional at an image's first difference (after it, the images legitimately diverge)."""
    draws = keras.ops.convert_to_numpy(uniform(fast.shape, seed)).reshape(len(fast), -1)
    differing = np.flatnonzero((fast != plain).reshape(len(fast), -1).any(axis=1))
    assert len(differing) <= max(1, len(fast) // 10), f"{len(differing)} of {len(fast)} images differ"
    for image in differing:
        index = np.flatnonzero(fast[image].ravel() != plain[image].ravel())[0]
        logits = logits_of(model, plain[image:image + 1], None if labels is None else labels[image:image + 1])
        logits = logits.reshape(-1, *logits.shape[4:])[index]
        if num_levels == 2:
            cdf = np.array([1.0 / (1.0 + np.exp(logits))])
        else:
            cdf = np.cumsum(np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum())
        assert np.abs(cdf - draws[image, index]).min() < 1e-4, (image, index)


# RGB: the completion test below compares the two loops on RGB images of every arch.
@pytest.mark.parametrize("arch,kind", slow_except([(arch, kind) for arch in FAST_ARCHS for kind in ("gray", "binary")],
                                                  *[(arch, "binary") for arch in FAST_ARCHS]))
def test_fast_samples_equal_plain_samples(arch, kind):
    image_shape, num_levels = KINDS[kind]
    model = _sharp_model(arch, image_shape, num_levels)
    fast = pk.sample(model, 16, seed=11)
    plain = pk.sample(model, 16, seed=11, method="plain")
    assert pk.sampling._sampler(model, "fast").method == "fast"
    _assert_same_up_to_boundaries(fast, plain, model, 11, num_levels)


@pytest.mark.parametrize("arch", FAST_ARCHS)
@slow
def test_fast_completion_keeps_known_values_and_equals_plain(arch):
    model = _sharp_model(arch, (3, 3, 3), 6)
    images = np.random.default_rng(2).integers(0, 6, (6, 3, 3, 3))
    known = np.random.default_rng(3).random(images.shape) < 0.5
    fast = pk.complete(model, images, known, seed=4)
    np.testing.assert_array_equal(fast[known], images[known])
    plain = pk.complete(model, images, known, seed=4, method="plain")
    _assert_same_up_to_boundaries(fast, plain, model, 4, 6)


def test_conditional_sampling_uses_the_labels():
    model = _conditional_model((2, 2, 1), 6)
    labels = np.array([0, 1, 2, 0, 1, 2], np.int32)
    fast = pk.sample(model, 6, seed=1, labels=labels)
    plain = pk.sample(model, 6, seed=1, labels=labels, method="plain")
    _assert_same_up_to_boundaries(fast, plain, model, 1, 6, labels)
    other = pk.sample(model, 6, seed=1, labels=(labels + 1) % 3)
    assert (other != fast).any()
    images = np.zeros((6, 2, 2, 1), np.int32)
    known = np.zeros((2, 2), bool)
    known[0, 0] = True
    completed = pk.complete(model, images, known, seed=1, labels=labels)
    assert (completed[:, 0, 0] == 0).all()


@pytest.mark.parametrize("call,message", [
    (lambda m: pk.sample(m, 2, seed=0), "class-conditional"),
    (lambda m: pk.sample(m, 2, seed=0, labels=np.array([0, 3])), r"labels in \[0, 2\]"),
    (lambda m: pk.sample(m, 2, seed=0, labels=np.array([0, 1, 2])), r"shape \(2,\)"),
    (lambda m: pk.sample(m, 2, seed=0, labels=np.array([0.0, 1.0])), "integer labels"),
])
def test_bad_labels(call, message):
    with pytest.raises(ValueError, match=message):
        call(_conditional_model((2, 2, 1), 4))


def test_labels_for_an_unconditional_model():
    model = pk.build_model("pixelcnn", (2, 2, 1), 4, num_layers=1, hidden=2)
    with pytest.raises(ValueError, match="unconditional"):
        pk.sample(model, 2, seed=0, labels=np.array([0, 1]))


@slow
def test_large_requests_run_in_batches():
    model = _sharp_model("pixelcnn", (2, 2, 1), 4)
    whole = pk.sample(model, 5, seed=3, batch_size=2)
    assert whole.shape == (5, 2, 2, 1)
    np.testing.assert_array_equal(whole[:2], pk.sample(model, 2, seed=3))
    np.testing.assert_array_equal(whole, pk.sample(model, 5, seed=3, batch_size=2, method="plain"))
    assert (whole[2:4] != whole[:2]).any() or (whole[4] != whole[0]).any()  # each batch its own draws


def test_a_layer_without_a_rule_falls_back_to_the_plain_loop():
    model = pk.build_model("pixelcnn", (2, 2, 1), 3, num_layers=1, hidden=2)
    shifted = keras.Model(model.input, keras.ops.roll(model.output, 1, axis=2))
    with pytest.raises(NotImplementedError, match="class Roll"):
        IncrementalModel(shifted, (2, 2, 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sampler = Sampler(shifted)
    assert sampler.method == "plain" and "class Roll" in str(caught[0].message)
    assert sampler.sample(2, seed=0).shape == (2, 2, 2, 1)


class _LeftNeighbour(IncrementalStep, keras.layers.Layer):
    """A user layer with the incremental-step protocol: its output at (r, c) is its input at
    (r, c - 1), zero in column 0 (the past only, so it may follow any layer)."""

    def call(self, inputs):
        return keras.ops.pad(inputs, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]

    def step_start(self, batch, width):
        return (), (keras.ops.zeros((batch, 1, 1, 6)),)

    def step(self, weights, state, col, inputs, conditioning=None):
        return (inputs,), state[0]

    def end_of_row(self, weights, state):
        return (keras.ops.zeros_like(state[0]),)


class _Doubled(keras.layers.Layer):
    """A user layer with no protocol: it samples fast through a registered rule."""

    def call(self, inputs):
        return 2.0 * inputs


@register_rule(_Doubled)
class _DoubledRule(PointwiseRule):
    calls = 0

    def step(self, state, row, col, args, kwargs):
        _DoubledRule.calls += 1
        return state, 2.0 * args[0]


def test_user_layers_sample_fast_by_the_protocol_or_a_registered_rule():
    image_shape, num_levels = (2, 3, 1), 4
    keras.utils.set_random_seed(1)
    images = keras.Input(image_shape, dtype="int32", name="images")
    x = keras.layers.Rescaling(2.0 / (num_levels - 1), offset=-1.0)(images)
    x = MaskedConv2D(6, 3, "A", 1)(x)
    x = keras.layers.Add()([x, _LeftNeighbour()(x)])
    x = keras.layers.ReLU()(_Doubled()(x))
    x = MaskedConv2D(num_levels, 1, "B", 1, kernel_initializer=keras.initializers.RandomNormal(stddev=3.0))(x)
    model = keras.Model(images, keras.layers.Reshape(image_shape + (num_levels,))(x))
    plan = IncrementalModel(model, image_shape).plan
    assert [type(rule).__name__ for _, rule, _ in plan if type(rule.layer) in (_LeftNeighbour, _Doubled)] == [
        "LayerStepRule", "_DoubledRule"]
    _check_logits(model, image_shape, num_levels)
    assert _DoubledRule.calls > 0


@pytest.mark.parametrize("arch", slow_except(CONDITIONAL_ARCHS, "row_lstm"))
def test_fast_logits_of_conditional_archs(arch):
    model = _sharp_model(arch, (2, 3, 1), 3, num_classes=3)
    _check_logits(model, (2, 3, 1), 3, labels=np.array([2, 1], np.int32))


def test_fast_loop_takes_an_empty_batch():
    """The SavedModel `complete` signature may get zero images (the row-stage convolution of the
    Gated PixelCNN's vertical stack once returned a wrong shape for them)."""
    sampler = Sampler(pk.build_model("gated_pixelcnn", (2, 2, 1), 3, num_layers=1, hidden=2))
    empty = np.zeros((0, 2, 2, 1), np.int32)
    assert sampler.fill(empty, empty > 0, np.int64(0), np.float32(1.0)).shape == (0, 2, 2, 1)


def _multiscale_model(arch, image_shape, num_levels, **kwargs):
    """A 1-layer multi-scale model (factor 2) with random weights of scale 0.5 everywhere, so that
    the conditioning map reaches every layer and logits are far from zero."""
    model = pk.build_multiscale_model(arch, image_shape, num_levels, num_layers=1, hidden=6, map_features=4,
                                      **kwargs)
    rng = np.random.default_rng(4)
    for weight in model.weights:
        weight.assign(rng.normal(0, 0.5, weight.shape).astype("float32"))
    return model


def _multiscale_logits(model, images, labels=None):
    """The conditionals of a multi-scale model's draws: at the small positions given the values
    before them (the small stage reads only small pixels), elsewhere given the values before them
    and the whole small image."""
    positions = small_positions(images.shape[1:3], 2)
    small_first = _full_network_logits(model, images, labels)
    small_known = _full_network_logits(model, images, labels, keep=positions)
    positions = positions.reshape((1,) + positions.shape + (1,) * (small_first.ndim - 3))
    return np.where(positions, small_first, small_known)


@pytest.mark.parametrize("arch", CONDITIONAL_ARCHS)
@slow
def test_fast_multiscale_sampling_equals_plain_without_a_fallback(arch):
    model = _multiscale_model(arch, (4, 4, 1), 3)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Fast sampling")
        fast = pk.sample(model, 16, seed=11)
    assert pk.sampling._sampler(model, "fast").method == "fast"
    plain = pk.sample(model, 16, seed=11, method="plain")
    _assert_same_up_to_boundaries(fast, plain, model, 11, 3, logits_of=_multiscale_logits)


@pytest.mark.parametrize("arch", slow_except(CONDITIONAL_ARCHS, "pixelcnn"))
def test_fast_multiscale_logits_equal_the_full_models_at_every_step(arch):
    model = _multiscale_model(arch, (4, 4, 3), 4)
    _check_logits(model, (4, 4, 3), 4, logits_of=_multiscale_logits)


@slow
def test_fast_multiscale_logits_of_a_class_conditional_model():
    model = _multiscale_model("gated_pixelcnn", (2, 4, 1), 3, num_classes=2)
    _check_logits(model, (2, 4, 1), 3, labels=np.array([1, 0], np.int32), logits_of=_multiscale_logits)


@slow
def test_fast_multiscale_completion_keeps_known_values_and_equals_plain():
    model = _multiscale_model("row_lstm", (4, 4, 3), 5)
    images = np.random.default_rng(2).integers(0, 5, (8, 4, 4, 3))
    known = np.random.default_rng(3).random(images.shape) < 0.5
    fast = pk.complete(model, images, known, seed=4)
    np.testing.assert_array_equal(fast[known], images[known])
    plain = pk.complete(model, images, known, seed=4, method="plain")
    _assert_same_up_to_boundaries(fast, plain, model, 4, 5, logits_of=_multiscale_logits)


@slow
def test_fast_samples_of_a_model_with_dropout_equal_plain_samples():
    """Dropout layers (`build_model(dropout=...)`) are the identity when sampling: the fast loop keeps
    its rule for them and draws what the plain loop draws."""
    keras.utils.set_random_seed(0)
    model = pk.build_model("pixelcnn", (3, 3, 1), 4, num_layers=2, hidden=4, dropout=0.5)
    fast = pk.sample(model, 16, seed=11)
    plain = pk.sample(model, 16, seed=11, method="plain")
    assert pk.sampling._sampler(model, "fast").method == "fast"
    _assert_same_up_to_boundaries(fast, plain, model, 11, 4)
