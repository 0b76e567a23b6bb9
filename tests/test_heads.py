"""The discretized logistic mixture head: exact normalisation, a numpy reference, causality,
sampling and the fast sampler with it, serialisation and input checks."""

import itertools
import json

import keras
import numpy as np
import pytest

import pixel_keras as pk
from pixel_keras.heads import DiscretizedLogisticMixture, mixture_log_probs
from tests.dependencies import assert_causal, dependency_map, jacobian
from tests.test_fast_sampling import _check_logits, _sharp_model
from tests.test_sampling import _frequencies_match
from tests.tiers import slow, slow_except

MIXTURE = {"head": "logistic_mixture", "num_mixtures": 2}
# Per channel [mixture logits, means, log-scales] of 3 components: a component at the floor (and one
# below it, clamped), means at and beyond the edges of [-1, 1] and between two levels, a wide one;
# the last set puts tiny probabilities (1e-6) two bins away, where a density shortcut shows in the sum.
PARAMETER_SETS = np.array([
    [0.0, 0.0, 0.0, -1.0, 1.0, 0.0, -7.0, -7.0, -7.0],
    [2.0, -1.0, 0.5, -1.3, 1.4, 0.02, -20.0, -3.0, 2.0],
    [-3.0, 4.0, 0.0, 0.5, -0.999, 0.1, -6.9, -1.0, -12.0],
    [1.0, 1.0, 1.0, 0.33, 0.0, -0.5, 0.5, -4.0, -7.0],
    [9.0, 0.0, 0.0, 200 / 255 - 1, 0.0, 0.0, -7.0, 0.0, 0.0],  # one sharp component on level 100 of 256
], np.float32)


def _log_probs(params, num_levels):
    return np.asarray(mixture_log_probs(keras.ops.convert_to_tensor(params), num_levels, -7.0))


def _reference_log_probs(params, num_levels, log_scale_min=-7.0):
    """The discretized logistic mixture straight from its definition, in float64 numpy."""
    logits, means, log_scales = np.split(params.astype(np.float64), 3, axis=-1)
    scales = np.exp(np.maximum(log_scales, log_scale_min))[..., None]
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights = (weights / weights.sum(-1, keepdims=True))[..., None]
    centres = np.linspace(-1.0, 1.0, num_levels)
    half_bin = 1.0 / (num_levels - 1)
    cdf = lambda x: 1.0 / (1.0 + np.exp(-(x - means[..., None]) / scales))  # noqa: E731
    with np.errstate(over="ignore"):  # exp overflow is a CDF of 0, exactly right
        upper, lower = cdf(centres + half_bin), cdf(centres - half_bin)
    upper = np.where(centres == 1.0, 1.0, upper)
    lower = np.where(centres == -1.0, 0.0, lower)
    with np.errstate(divide="ignore"):  # log(0) where float64 underflows: not compared
        return np.log(np.sum(weights * (upper - lower), axis=-2))


@pytest.mark.parametrize("num_levels", [2, 3, 17, 256])
def test_levels_sum_to_one(num_levels):
    log_probs = _log_probs(PARAMETER_SETS, num_levels)
    assert log_probs.shape == (len(PARAMETER_SETS), num_levels) and np.isfinite(log_probs).all()
    np.testing.assert_allclose(np.exp(log_probs.astype(np.float64)).sum(-1), 1.0, rtol=0, atol=1e-6)


@pytest.mark.parametrize("num_levels", [2, 5, 256])
def test_matches_the_numpy_reference(num_levels):
    """Equal where the float64 reference is exact (log-probabilities above -30); the rest is finite
    and as small as the reference says (or smaller than float64 can hold)."""
    log_probs = _log_probs(PARAMETER_SETS, num_levels)
    reference = _reference_log_probs(PARAMETER_SETS, num_levels)
    exact = reference > -30.0
    assert exact.sum() > len(PARAMETER_SETS) and (num_levels == 2 or (~exact).any())  # both regimes
    np.testing.assert_allclose(log_probs[exact], reference[exact], rtol=0, atol=2e-4)
    assert np.isfinite(log_probs).all() and (log_probs[~exact] < -29.0).all()


def test_gradients_are_finite_at_the_edges_and_the_floor():
    gradient = jacobian(lambda params: keras.ops.sum(mixture_log_probs(params, 256, -7.0)), PARAMETER_SETS)
    assert gradient.shape == np.shape(PARAMETER_SETS) and np.isfinite(gradient).all()


def test_binary_output_is_the_bernoulli_logit():
    layer = DiscretizedLogisticMixture(2, 3)
    log_probs = _log_probs(PARAMETER_SETS, 2)
    np.testing.assert_allclose(np.asarray(layer(PARAMETER_SETS)), log_probs[:, 1] - log_probs[:, 0], atol=1e-5)


@pytest.mark.parametrize("image_shape,num_levels", [((2, 2, 1), 3), ((1, 1, 3), 4), ((2, 2, 1), 2), ((1, 1, 1), 256)])
def test_all_images_sum_to_one(image_shape, num_levels):
    keras.utils.set_random_seed(0)
    model = pk.build_model("pixelcnn", image_shape, num_levels, num_layers=1, hidden=4, **MIXTURE)
    head = model.get_layer("head_logits")
    head.set_weights([w * 5.0 for w in head.get_weights()])  # scales from wide to the floor
    everything = np.array(list(itertools.product(range(num_levels), repeat=int(np.prod(image_shape)))))
    log_p = pk.log_prob(model, everything.reshape((-1,) + image_shape)).astype(np.float64)
    np.testing.assert_allclose(np.exp(log_p).sum(), 1.0, rtol=0, atol=1e-5)


@pytest.mark.parametrize("arch,image_shape,num_levels", slow_except([
    ("pixelcnn", (4, 4, 3), 5), ("row_lstm", (4, 4, 1), 256), ("gated_pixelcnn", (3, 3, 3), 2)],
    ("pixelcnn", (4, 4, 3), 5), ("gated_pixelcnn", (3, 3, 3), 2)))
def test_causal_with_the_mixture_head(arch, image_shape, num_levels):
    model = pk.build_model(arch, image_shape, num_levels, num_layers=1, hidden=6, **MIXTURE)
    for weight in model.weights:  # random biases, so a zero bias cannot hide a dependency
        if "bias" in weight.path:
            weight.assign(np.random.default_rng(1).normal(0, 0.1, weight.shape).astype("float32"))
    from_scaled = keras.Model(model.get_layer("scale_pixels").output, model.output)
    assert_causal(dependency_map(from_scaled, image_shape, image_shape[2]), strict=True)


def test_samples_follow_the_model():
    keras.utils.set_random_seed(0)
    model = pk.build_model("pixelcnn", (2, 2, 1), 3, num_layers=1, hidden=6, **MIXTURE)
    head = model.get_layer("head_logits")
    head.set_weights([w * 8.0 for w in head.get_weights()])
    samples = pk.sample(model, 3000, seed=7)
    assert pk.sampling._sampler(model, "fast").method == "fast"
    assert _frequencies_match(model, samples, 3) > 1e-3


@pytest.mark.parametrize("arch,image_shape,num_levels", slow_except([
    ("pixelcnn", (2, 3, 3), 5), ("diagonal_bilstm", (3, 4, 1), 4), ("gated_pixelcnn", (3, 3, 1), 2)],
    ("gated_pixelcnn", (3, 3, 1), 2)))
def test_fast_sampler_computes_the_full_network(arch, image_shape, num_levels):
    model = _sharp_model(arch, image_shape, num_levels, **MIXTURE)
    _check_logits(model, image_shape, num_levels)


def test_keras_round_trip(tmp_path):
    model = pk.build_model("row_lstm", (3, 3, 3), 7, num_layers=1, hidden=4, head="logistic_mixture", num_mixtures=3)
    model.save(tmp_path / "m.keras")
    loaded = pk.load_model(tmp_path / "m.keras")
    layer = loaded.get_layer("logits")
    assert isinstance(layer, DiscretizedLogisticMixture) and (layer.num_levels, layer.num_mixtures) == (7, 3)
    images = np.random.default_rng(0).integers(0, 7, (2, 3, 3, 3))
    np.testing.assert_allclose(pk.log_prob(loaded, images), pk.log_prob(model, images), rtol=1e-6)


@pytest.mark.parametrize("call,message", [
    (lambda: pk.build_model("pixelcnn", (2, 2, 1), 3, head="mixture"), "head='mixture'"),
    (lambda: pk.build_model("pixelcnn", (2, 2, 1), 3, head="logistic_mixture", num_mixtures=0), "num_mixtures=0"),
    (lambda: DiscretizedLogisticMixture(1), "num_levels=1"),
    (lambda: DiscretizedLogisticMixture(4, 2)(np.zeros((1, 5), np.float32)), "6 parameters per channel"),
])
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call()


def test_contender_specs_take_names():
    from benchmarks.contenders import parse_spec

    assert parse_spec("pixelcnn:head=logistic_mixture,num_mixtures=3,optimizer=adam,lr=0.002") == (
        "pixelcnn", {"head": "logistic_mixture", "num_mixtures": 3, "optimizer": "adam", "lr": 0.002})


@slow
def test_training_run_with_the_mixture_head(tmp_path, capsys):
    from training import run as training_run

    run_dir = tmp_path / "run"
    command = ["--arch", "pixelcnn", "--dataset", "digits", "--layers", "1", "--hidden", "4", "--batch-size", "8",
               "--steps-per-epoch", "2", "--gallery-size", "1", "--gallery-every", "0", "--validation-images", "16",
               "--head", "logistic_mixture", "--num-mixtures", "2", "--optimizer", "adam", "--lr-schedule", "cosine",
               "--run-dir", str(run_dir)]
    training_run.main(command + ["--steps", "2"])
    training_run.main(command + ["--steps", "4"])  # the checkpoint restores; its cosine has ended at step 2
    out = capsys.readouterr().out
    assert "training finished: 2 steps" in out and "bits/dim" in out
    assert "the run is already complete: 2 steps (of 4), its cosine schedule ended" in out
    config = json.loads((run_dir / "run.json").read_text())
    assert (config["head"], config["num_mixtures"], config["optimizer"], config["lr_schedule"]) == (
        "logistic_mixture", 2, "adam", "cosine")
    model = pk.load_model(run_dir / "best.keras")  # fitted through the training view, saved whole
    assert isinstance(model.get_layer("logits"), DiscretizedLogisticMixture)
    assert (run_dir / "gallery" / "samples.png").exists()  # drawn from the full model, not the view


@slow
def test_export_serves_the_mixture_head_without_our_code(tmp_path):
    """The SavedModel's likelihood and sampling signatures, loaded in a process without pixel_keras."""
    import os
    import pathlib
    import subprocess
    import sys

    from export.saved_model import export_saved_model
    from pixel_keras.data import load_digits

    (_, test), levels = load_digits()
    images = test[:6].astype(np.int32)
    keras.utils.set_random_seed(0)
    model = pk.build_model("pixelcnn", images.shape[1:], levels, num_layers=1, hidden=4, **MIXTURE)
    export_saved_model(model, str(tmp_path / "export"))
    np.savez(tmp_path / "expected.npz", images=images, log_prob=pk.log_prob(model, images), num_levels=levels)
    check = pathlib.Path(__file__).parent / "serving_check.py"
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(check), str(tmp_path / "export"), str(tmp_path / "expected.npz")],
                          cwd=tmp_path, env=environment, capture_output=True, text=True)
    assert done.returncode == 0 and "serving checks passed" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]


# The training view (pixel_keras.fitting): the mixture's loss from its parameters, observed level only.

@pytest.mark.parametrize("num_levels", [2, 3, 256])
def test_observed_level_equals_the_full_heads_level(num_levels):
    """Every level of every parameter set (edge levels, means beyond [-1, 1], scales at and below
    the floor): log P(observed) equals the all-levels head's entry to float32 rounding."""
    from pixel_keras.heads import observed_level_log_probs

    full = _log_probs(PARAMETER_SETS, num_levels)  # (sets, L)
    params = np.repeat(PARAMETER_SETS[:, None], num_levels, axis=1)  # (sets, L, 3K), level k in row k
    levels = np.broadcast_to(np.arange(num_levels), full.shape)
    observed = np.asarray(observed_level_log_probs(keras.ops.convert_to_tensor(params), levels, num_levels, -7.0))
    np.testing.assert_allclose(observed, full, rtol=1e-5, atol=1e-6)


def _view_case(image_shape, num_levels, seed=0):
    """A 1-layer mixture model with sharpened head weights (log-scales down to the floor), its
    training view and loss, and images that include both edge levels."""
    from pixel_keras.fitting import training_view

    keras.utils.set_random_seed(seed)
    model = pk.build_model("pixelcnn", image_shape, num_levels, num_layers=1, hidden=4, **MIXTURE)
    head = model.get_layer("head_logits")
    kernel, bias = head.get_weights()
    bias = bias.reshape(image_shape[2], 3, 2)  # per channel [logits, means, log-scales] x 2 components
    bias[:, 2, 0] = -9.0  # the first component's log-scale below the floor (clamped to -7)
    head.set_weights([kernel * 8.0, bias.reshape(-1)])
    images = np.random.default_rng(seed).integers(0, num_levels, (6,) + image_shape).astype(np.int32)
    images[0], images[1] = 0, num_levels - 1
    fit_model, loss = training_view(model)
    return model, fit_model, loss, images


@pytest.mark.parametrize("image_shape,num_levels", [
    ((2, 2, 1), 256), ((2, 2, 3), 256), ((3, 2, 3), 5), ((2, 2, 1), 2), ((2, 2, 3), 2)])
def test_view_loss_equals_the_full_nll(image_shape, num_levels):
    from pixel_keras.losses import nll_bits_per_dim

    model, fit_model, loss, images = _view_case(image_shape, num_levels)
    params = np.asarray(fit_model(images))
    assert params.shape == (6,) + image_shape + (6,) and (params[..., 4] < -7.0).mean() > 0.5  # at the floor
    loss.reduction = None
    fast = np.asarray(loss(images, params))
    np.testing.assert_allclose(fast, np.asarray(nll_bits_per_dim(images, model(images))), rtol=1e-5)
    fast_mean = float(_round_tripped_loss(num_levels)(images, params))
    assert fast_mean == pytest.approx(float(pk.NegativeLogLikelihood()(images, model(images))), rel=1e-5)


def _round_tripped_loss(num_levels):
    """The view's loss rebuilt from its config (as a compiled model's loss is by `.keras` loading)."""
    from pixel_keras.heads import MixtureNegativeLogLikelihood

    return keras.losses.deserialize(keras.losses.serialize(MixtureNegativeLogLikelihood(num_levels)))


@pytest.mark.tensorflow
@pytest.mark.parametrize("image_shape,num_levels", [((2, 2, 3), 256), ((2, 2, 1), 2)])
def test_view_gradient_equals_the_full_gradient(image_shape, num_levels):
    import tensorflow as tf

    model, fit_model, loss, images = _view_case(image_shape, num_levels)
    gradients = []
    for net, objective in ((model, pk.NegativeLogLikelihood()), (fit_model, loss)):
        with tf.GradientTape() as tape:
            value = objective(images, net(images, training=True))
        gradients.append(tape.gradient(value, model.trainable_variables))
    for full, fast in zip(*gradients):  # float32 rounding of the full path's sum over all levels
        full = np.asarray(full)
        np.testing.assert_allclose(np.asarray(fast), full, rtol=1e-4, atol=1e-4 * np.abs(full).max())


def test_multiscale_view_loss_equals_the_full_nll():
    from pixel_keras.fitting import training_view
    from pixel_keras.losses import nll_bits_per_dim

    keras.utils.set_random_seed(0)
    model = pk.build_multiscale_model("pixelcnn", (4, 4, 1), 5, num_layers=1, hidden=4, **MIXTURE)
    fit_model, loss = training_view(model)
    images = np.random.default_rng(0).integers(0, 5, (4, 4, 4, 1)).astype(np.int32)
    loss.reduction = None
    np.testing.assert_allclose(np.asarray(loss(images, fit_model(images))),
                               np.asarray(nll_bits_per_dim(images, model(images))), rtol=1e-5)


def test_view_loss_is_nan_for_targets_the_head_cannot_score():
    model, fit_model, loss, images = _view_case((2, 2, 1), 2)
    bad = images.astype(np.float32)
    bad[2, 0, 0, 0], bad[3, 1, 1, 0], bad[4, 0, 1, 0] = 255.0, 0.5, -1.0  # 8-bit data, non-integer, negative
    loss.reduction = None
    values = np.asarray(loss(bad, fit_model(images)))
    assert np.isnan(values[2:5]).all() and np.isfinite(values[[0, 1, 5]]).all()


@slow
def test_a_training_step_through_the_view_trains_the_full_model():
    from pixel_keras.fitting import ModelKeeper, compile_for_training, keep_model, training_view

    model, _, _, images = _view_case((2, 2, 3), 256)
    categorical = pk.build_model("pixelcnn", (2, 2, 1), 4, num_layers=1, hidden=4)
    assert training_view(categorical)[0] is categorical
    fit_model = compile_for_training(model, keras.optimizers.Adam(1e-2), jit_compile=False)
    assert fit_model is not model and fit_model.optimizer is model.optimizer
    before, output_before = [w.numpy().copy() for w in model.weights], np.asarray(model(images))
    first = fit_model.train_on_batch(images, images)
    assert all((w.numpy() != b).any() for w, b in zip(model.trainable_weights, before)
               if w.shape.rank and "kernel" in w.path)
    assert not np.allclose(np.asarray(model(images)), output_before)
    for _ in range(3):
        last = fit_model.train_on_batch(images, images)
    assert last < first and int(model.optimizer.iterations) == 4
    kept, plain = keep_model(ModelKeeper(), model), ModelKeeper()
    fit_model.fit(images, images, epochs=1, verbose=0, callbacks=[kept, plain])
    assert kept.model is model and plain.model is fit_model  # e.g. the gallery samples the full model
    assert float(model.evaluate(images, images, verbose=0)) == pytest.approx(
        float(fit_model.evaluate(images, images, verbose=0)), rel=1e-5)


@pytest.mark.parametrize("image_shape,num_levels", slow_except([((2, 2, 3), 256), ((3, 2, 3), 5), ((2, 2, 1), 2)],
                                                               ((2, 2, 3), 256)))
def test_log_prob_scores_the_observed_level_as_the_full_head_does(image_shape, num_levels):
    """`pk.log_prob` of a mixture model goes through the parameter view (observed level only): the
    same numbers as the full per-level output, edge levels and the log-scale floor included."""
    from pixel_keras.losses import log_prob_from_logits

    model, _, _, images = _view_case(image_shape, num_levels)
    full = np.asarray(log_prob_from_logits(model(images), images))
    np.testing.assert_allclose(pk.log_prob(model, images, batch_size=4), full, rtol=1e-5)


@slow
def test_log_prob_of_a_multiscale_mixture_model_equals_the_full_head():
    from pixel_keras.losses import log_prob_from_logits

    keras.utils.set_random_seed(0)
    model = pk.build_multiscale_model("pixelcnn", (4, 4, 1), 5, num_layers=1, hidden=4, **MIXTURE)
    images = np.random.default_rng(0).integers(0, 5, (4, 4, 4, 1)).astype(np.int32)
    np.testing.assert_allclose(pk.log_prob(model, images), np.asarray(log_prob_from_logits(model(images), images)),
                               rtol=1e-5)
