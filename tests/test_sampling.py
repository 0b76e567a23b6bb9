"""Sampling follows the model, completion keeps what is known, seeds fix results, one trace."""

import itertools

import keras
import numpy as np
import pytest
from scipy.stats import chisquare

import pixel_keras as pk
from tests.tiers import slow, slow_except


def _sharp_model(arch, image_shape, num_levels):
    """A small random model with peaked conditionals, so a wrong sampling order is visible."""
    model = pk.build_model(arch, image_shape, num_levels, num_layers=1, hidden=6)
    head = model.get_layer("head_logits")
    head.set_weights([w * 8.0 for w in head.get_weights()])
    return model


def _frequencies_match(model, samples, num_levels):
    """Chi-square p-value of the sampled images' counts against exp(log p) of every image."""
    image_shape = samples.shape[1:]
    everything = np.array(list(itertools.product(range(num_levels), repeat=int(np.prod(image_shape)))))
    expected = np.exp(pk.log_prob(model, everything.reshape((-1,) + image_shape)).astype(np.float64))
    index = {tuple(image): i for i, image in enumerate(everything)}
    observed = np.bincount([index[tuple(s.ravel())] for s in samples], minlength=len(everything))
    return chisquare(observed, expected * len(samples) / expected.sum()).pvalue


# Every registered arch at 3 levels (fast), and binary, RGB and plain-loop cases.
@pytest.mark.parametrize("arch,image_shape,num_levels,method", [
    (arch, (2, 2, 1), 3, "fast") for arch in pk.arch_names()] + [
    ("pixelcnn", (2, 2, 1), 2, "fast"),
    ("pixelcnn", (1, 2, 3), 2, "fast"),
    ("gated_pixelcnn", (1, 2, 3), 2, "fast"),
    ("row_lstm", (2, 2, 1), 3, "plain"),
])
def test_samples_follow_the_model(arch, image_shape, num_levels, method):
    model = _sharp_model(arch, image_shape, num_levels)
    samples = pk.sample(model, 3000, seed=7, method=method)
    assert samples.shape == (3000,) + image_shape and samples.dtype == np.int32
    assert _frequencies_match(model, samples, num_levels) > 1e-3


def test_chi_square_rejects_sampling_from_shifted_conditionals():
    """The check has teeth: drawing each pixel from its left neighbour's conditional (a mask shifted
    by one pixel) gives samples that the true model's likelihoods reject."""
    model = _sharp_model("pixelcnn", (2, 2, 1), 3)
    shifted = keras.Model(model.input, keras.ops.roll(model.output, 1, axis=2))
    samples = pk.sample(shifted, 3000, seed=7)
    assert _frequencies_match(model, samples, 3) < 1e-6


@pytest.mark.parametrize("arch", slow_except(pk.arch_names(), "pixelcnn", "row_lstm"))
def test_completion_keeps_known_pixels(arch):
    model = pk.build_model(arch, (4, 4, 3), 8, num_layers=1, hidden=6)
    images = np.random.default_rng(0).integers(0, 8, (3, 4, 4, 3))
    known = np.zeros((4, 4), bool)
    known[:2] = True  # the paper's occlusion: bottom half hidden
    completed = pk.complete(model, images, known, seed=1)
    np.testing.assert_array_equal(completed[:, :2], images[:, :2])
    random_mask = np.random.default_rng(1).random(images.shape) < 0.5
    completed = pk.complete(model, images, random_mask, seed=1)
    np.testing.assert_array_equal(completed[random_mask], images[random_mask])
    np.testing.assert_array_equal(pk.complete(model, images, np.ones(images.shape, bool)), images)


def test_seeds_fix_samples():
    model = _sharp_model("pixelcnn", (3, 3, 1), 16)
    first = pk.sample(model, 4, seed=3)
    np.testing.assert_array_equal(pk.sample(model, 4, seed=3), first)
    assert (pk.sample(model, 4, seed=4) != first).any()
    assert (pk.sample(model, 4, seed=3, temperature=0.5) != first).any()


@pytest.mark.tensorflow
@pytest.mark.parametrize("arch,method", slow_except([(arch, "fast") for arch in pk.arch_names()] + [("pixelcnn", "plain")],
                                                    ("pixelcnn", "plain"), ("spatial_lstm", "fast")))
def test_loop_is_traced_once(arch, method):
    sampler = pk.Sampler(pk.build_model(arch, (3, 3, 1), 2, num_layers=1, hidden=2), method=method)
    sampler.sample(2, seed=0)
    sampler.sample(5, seed=1)
    sampler.complete(np.zeros((1, 3, 3, 1), np.int32), np.ones((3, 3), bool))
    assert sampler.fill.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("call,message", [
    (lambda s: s.sample(2, temperature=0.0), "positive temperature"),
    (lambda s: s.sample(-1), "num_images"),
    (lambda s: s.complete(np.zeros((2, 3, 3, 1), np.int32), np.ones((2, 2), bool)), "known_mask of shape"),
    (lambda s: s.complete(np.zeros((2, 3, 3, 1), np.int32), np.ones((3, 3), int)), "boolean known_mask"),
    (lambda s: s.complete(np.zeros((2, 3, 3, 1), np.float32), np.ones((3, 3), bool)), "dtype float32"),
    (lambda s: s.sample(2, seed=1.5), "seed to be an integer"),
    (lambda s: s.sample(2, batch_size=0), "batch_size=0"),
    (lambda s: pk.Sampler(s.model, method="cached"), "method='cached'"),
])
def test_bad_sampling_requests(call, message):
    sampler = pk.Sampler(pk.build_model("pixelcnn", (3, 3, 1), 4, num_layers=1, hidden=2))
    with pytest.raises(ValueError, match=message):
        call(sampler)


@slow
def test_loop_compiles_with_xla():
    model = pk.build_model("row_lstm", (3, 3, 1), 4, num_layers=1, hidden=2)
    images = np.random.default_rng(0).integers(0, 4, (2, 3, 3, 1))
    known = np.zeros((3, 3), bool)
    known[0] = True
    completed = pk.Sampler(model, jit_compile=True).complete(images, known, seed=2)
    np.testing.assert_array_equal(completed[:, 0], images[:, 0])
    assert completed.min() >= 0 and completed.max() < 4
