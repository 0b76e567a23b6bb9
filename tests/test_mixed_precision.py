"""Mixed precision the Keras way: float32 variables, compute in the policy's dtype, float32 logits and
likelihoods, and both samplers working, under "mixed_bfloat16" and "mixed_float16".

Each model is built under the policy with the weights of a float32 model of the same arch, so the
two must give the same bits/dim up to the compute dtype's rounding (tiny models: far below 0.01).
"""

import keras
import numpy as np
import pytest

import pixel_keras as pk
from pixel_keras.multiscale import stages
from tests.tiers import slow_except

POLICIES = ("mixed_bfloat16", "mixed_float16")
SHAPE, LEVELS = (2, 3, 1), 4
IMAGES = np.random.default_rng(0).integers(0, LEVELS, (6,) + SHAPE)
KNOWN = np.array([[True, False, True], [False, True, False]])


def _tiny(arch, multiscale=False, **options):
    if multiscale:
        return pk.build_multiscale_model(arch, (2, 2, 1), LEVELS, factor=2, num_layers=1, hidden=4, **options)
    return pk.build_model(arch, SHAPE, LEVELS, num_layers=1, hidden=4, **options)


@pytest.fixture
def policy(request):
    """Set the global policy for the test's model and always restore float32 (policies are global)."""
    try:
        keras.mixed_precision.set_global_policy(request.param)
        yield request.param
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _build_both(policy_name, arch, multiscale=False, **options):
    """(float32 model, the same model built under `policy_name` with its weights)."""
    keras.mixed_precision.set_global_policy("float32")
    reference = _tiny(arch, multiscale, **options)
    head = reference.get_layer("head_logits") if not multiscale else None
    if head is not None:  # peaked conditionals: samples depend on the logits, not on rounding luck
        head.set_weights([weight * 4.0 for weight in head.get_weights()])
    keras.mixed_precision.set_global_policy(policy_name)
    model = _tiny(arch, multiscale, **options)
    model.set_weights(reference.get_weights())
    return reference, model


def _valid(images, shape):
    return images.dtype == np.int32 and images.shape == shape and images.min() >= 0 and images.max() < LEVELS


CASES = [(arch, False, {}) for arch in pk.arch_names()] + [
    ("row_lstm", True, {}),
    ("pixelcnn", False, {"head": "logistic_mixture", "num_mixtures": 2}),
]


@pytest.mark.parametrize("policy", slow_except(POLICIES, "mixed_float16"), indirect=True)
@pytest.mark.parametrize("arch,multiscale,options", slow_except(CASES, CASES[0]), ids=list(pk.arch_names()) + ["multiscale", "mixture_head"])
def test_mixed_precision_model(policy, arch, multiscale, options):
    reference, model = _build_both(policy, arch, multiscale, **options)
    single_scale = stages(model)[0] if multiscale else model
    assert single_scale.get_layer("input_conv").compute_dtype == keras.DTypePolicy(policy).compute_dtype
    assert all(weight.dtype == "float32" for weight in model.weights)
    assert keras.backend.standardize_dtype(model.output.dtype) == "float32"

    images = IMAGES if not multiscale else IMAGES[:, :2, :2]
    log_p = pk.log_prob(model, images)
    assert log_p.dtype == np.float32
    bits = pk.bits_per_dim(model, images)
    keras.mixed_precision.set_global_policy("float32")
    reference_bits = pk.bits_per_dim(reference, images)
    keras.mixed_precision.set_global_policy(policy)
    np.testing.assert_allclose(bits, reference_bits, atol=0.01)
    loss = pk.NegativeLogLikelihood()(images, model(images))
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    np.testing.assert_allclose(float(loss), reference_bits.mean(), atol=0.01)

    shape = (32,) + images.shape[1:]
    samples = {method: pk.sample(model, 32, seed=3, method=method) for method in ("fast", "plain")}
    for method, drawn in samples.items():
        assert _valid(drawn, shape), (method, drawn.dtype, drawn.shape)
    # Same uniforms, peaked conditionals: the cached sampler draws the plain loop's values except
    # where rounding in the compute dtype moves a CDF boundary across a uniform (rare).
    assert np.mean(samples["fast"] == samples["plain"]) > 0.9
    known = np.broadcast_to(KNOWN[: shape[1], : shape[2]], images.shape[:3])
    filled = pk.complete(model, images, known, seed=3)
    assert _valid(filled, images.shape)
    np.testing.assert_array_equal(filled[known], images[known])
