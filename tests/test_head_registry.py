"""The head registry: a user head defined here, outside the package, registered with one call, is
built, trained, scored, sampled (fast == plain), saved and loaded through the library's own
paths; the built-ins dispatch through the same registry (the SavedModel's mixture scoring is
test_heads' serving check); bad registrations are refused in one line."""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

import pixel_keras as pk
from pixel_keras.head_registry import head_of
from pixel_keras.incremental import PointwiseRule, register_rule, unregister_rule
from tests.dependencies import assert_causal, dependency_map
from tests.test_fast_sampling import _check_logits


@keras.saving.register_keras_serializable(package="tests")
class Tempered(keras.layers.Layer):
    """Per-level log-probabilities: log_softmax(logits / 2). Pointwise, so the fast sampler's
    pointwise rule steps it."""

    def call(self, logits):
        return ops.log_softmax(ops.cast(logits, "float32") / 2.0, axis=-1)

    def compute_output_spec(self, logits):
        return keras.KerasTensor(logits.shape, dtype="float32")


def tempered_output(features, image_shape, num_levels, num_mixtures):
    if num_levels < 3:
        raise ValueError(f"The tempered head needs num_levels >= 3. Received num_levels={num_levels}.")
    logits = keras.layers.Reshape(tuple(image_shape) + (num_levels,), name="head_levels", dtype="float32")(features)
    return Tempered(name="logits", dtype="float32")(logits)


def tempered_view(model):
    def log_probs(output, images):  # the observed level's log-probability, read off the output
        return ops.squeeze(ops.take_along_axis(output, ops.expand_dims(images, -1), axis=-1), -1)

    return pk.ObservedView(model, log_probs, pk.NegativeLogLikelihood())


TEMPERED = pk.Head(name="tempered", description="a softmax at temperature 2",
                   features_per_channel=lambda num_levels, num_mixtures: num_levels, build_output=tempered_output,
                   observed_view=tempered_view,
                   in_model=lambda model: any(isinstance(layer, Tempered) for layer in model.layers))


@pytest.fixture
def tempered():
    pk.register_head(TEMPERED)
    register_rule(Tempered)(PointwiseRule)
    yield "tempered"
    pk.unregister_head("tempered")
    unregister_rule(Tempered)


def _model(image_shape=(2, 2, 1), num_levels=3, arch="pixelcnn"):
    keras.utils.set_random_seed(0)
    model = pk.build_model(arch, image_shape, num_levels, num_layers=1, hidden=4, head="tempered")
    head = model.get_layer("head_logits")
    head.set_weights([w * 8.0 for w in head.get_weights()])
    return model


def test_a_user_head_is_built_recognised_and_normalised(tempered):
    model = _model()
    assert head_of(model) is TEMPERED and model.output.shape == (None, 2, 2, 1, 3)
    everything = np.array(list(itertools.product(range(3), repeat=4))).reshape(-1, 2, 2, 1)
    log_p = pk.log_prob(model, everything).astype(np.float64)
    np.testing.assert_allclose(np.exp(log_p).sum(), 1.0, rtol=0, atol=1e-5)
    # pk.log_prob went through the head's own observed view: the tempered output, not the raw logits
    output = np.asarray(model(everything[:5]))
    expected = np.take_along_axis(output, everything[:5, ..., None], -1).sum(axis=(1, 2, 3, 4))
    np.testing.assert_allclose(log_p[:5], expected, rtol=1e-5)


def test_a_user_head_keeps_causality_and_samples_fast(tempered):
    model = _model((3, 3, 3), 4)
    assert_causal(dependency_map(keras.Model(model.get_layer("scale_pixels").output, model.output), (3, 3, 3), 3),
                  strict=True)
    assert pk.sampling._sampler(model, "fast").method == "fast"
    _check_logits(model, (3, 3, 3), 4)


def test_a_user_head_trains_and_round_trips(tempered, tmp_path):
    from pixel_keras.fitting import compile_for_training

    model = _model()
    images = np.random.default_rng(0).integers(0, 3, (32, 2, 2, 1)).astype(np.int32)
    fitted = compile_for_training(model, keras.optimizers.Adam(0.01), jit_compile=False)
    assert fitted is model
    before = -pk.log_prob(model, images).mean()
    fitted.fit(images, images, epochs=20, batch_size=32, verbose=0)
    assert -pk.log_prob(model, images).mean() < before - 0.1
    model.save(tmp_path / "tempered.keras")
    loaded = pk.load_model(tmp_path / "tempered.keras")
    assert head_of(loaded) is TEMPERED
    np.testing.assert_allclose(pk.log_prob(loaded, images), pk.log_prob(model, images), rtol=1e-6)


def test_the_training_app_offers_registered_heads(tempered):
    from training.run import parse_args

    assert parse_args(["--arch", "pixelcnn", "--head", "tempered"]).head == "tempered"


def test_a_head_may_refuse_a_level_count(tempered):
    with pytest.raises(ValueError, match="needs num_levels >= 3"):
        pk.build_model("pixelcnn", (2, 2, 1), 2, num_layers=1, hidden=4, head="tempered")


@pytest.mark.parametrize("change,error,message", [
    ({"name": "Bad Name"}, ValueError, r"head name matching"),
    ({"name": "categorical"}, ValueError, r"'categorical' is a built-in head; choose another name"),
    ({"in_model": None}, ValueError, r"needs in_model"),
    ({"build_output": 3}, ValueError, r"build_output to be a function"),
])
def test_bad_registrations_are_refused_in_one_line(change, error, message):
    import dataclasses

    with pytest.raises(error, match=message):
        pk.register_head(dataclasses.replace(TEMPERED, **change))
    assert pk.head_names() == ("categorical", "logistic_mixture")
    with pytest.raises(ValueError, match=r"one of \('categorical', 'logistic_mixture'\). Received head='nope'"):
        pk.build_model("pixelcnn", (2, 2, 1), 3, head="nope")
    with pytest.raises(ValueError, match="built-in head"):
        pk.unregister_head("categorical")


def test_the_builtins_dispatch_through_the_registry():
    from pixel_keras.head_registry import observed_view

    for name, observed_is_model in (("categorical", True), ("logistic_mixture", False)):
        model = pk.build_model("pixelcnn", (2, 2, 1), 3, num_layers=1, hidden=4, head=name, num_mixtures=2)
        assert head_of(model).name == name
        assert (observed_view(model).model is model) == observed_is_model


def test_the_saved_model_scores_a_mixture_through_the_observed_level(monkeypatch):
    """The SavedModel's log_likelihood takes the head's observed view (K logistics per sub-pixel):
    with the per-level mixture made to fail, it still traces and gives pk.log_prob's numbers."""
    import tensorflow as tf

    from export.saved_model import _serving_functions
    from pixel_keras import heads

    keras.utils.set_random_seed(0)
    model = pk.build_model("pixelcnn", (3, 3, 1), 256, num_layers=1, hidden=4, head="logistic_mixture",
                           num_mixtures=2)
    images = np.random.default_rng(0).integers(0, 256, (4, 3, 3, 1)).astype(np.int32)
    expected = pk.log_prob(model, images)
    log_likelihood = _serving_functions(model)["log_likelihood"]

    def per_level(*args):
        raise AssertionError("the SavedModel scored through every level")

    monkeypatch.setattr(heads, "mixture_log_probs", per_level)
    served = tf.function(log_likelihood)(tf.constant(images))["log_prob"].numpy()
    np.testing.assert_allclose(served, expected, rtol=1e-6, atol=1e-4)
