"""Serving that one request cannot take down: per-request bounds, empty batches, and every exported
signature fuzzed with seeded random requests (shapes, dtypes, ranges, counts, seeds, temperatures,
masks, labels; empty and oversized ones included), each checked against an oracle of what the
request deserves: success with the promised outputs, or a fast refusal with one of our messages."""

import resource
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import pixel_keras as pk
from export.saved_model import SIGNATURE_INPUTS, export_saved_model, main as export_main
from tests.tiers import slow

IMAGE_SHAPE, LEVELS, CLASSES = (3, 3, 1), 4, 3
MAX_SAMPLE, MAX_SCORE = 3, 5
CASES_PER_SIGNATURE = 500
FAST = 1.0  # seconds: a refusal must come well under a second (it takes a few milliseconds)


@pytest.fixture(scope="module", params=[None, CLASSES], ids=["unconditional", "conditional"])
def served(request, tmp_path_factory):
    """(loaded SavedModel, num_classes) of a tiny PixelCNN exported with small bounds."""
    keras.utils.set_random_seed(0)
    model = pk.build_model("pixelcnn", IMAGE_SHAPE, LEVELS, num_layers=1, hidden=4, num_classes=request.param)
    export_dir = tmp_path_factory.mktemp("served") / "1"
    export_saved_model(model, export_dir, max_sample_images=MAX_SAMPLE, max_score_images=MAX_SCORE)
    return tf.saved_model.load(str(export_dir)), request.param


# ---- the oracle: what each request deserves --------------------------------------------------

def _shape_message():
    height, width, channels = IMAGE_SHAPE
    return f"images must have shape [batch, {height}, {width}, {channels}]"


def _bound_message(count_name, limit_name):
    limit = MAX_SAMPLE if limit_name == "max_sample_images" else MAX_SCORE
    return f"{count_name} must be <= {limit} (the {limit_name} of this export)"


def _out_of_range(values, size):
    return values.size > 0 and (values.min() < 0 or values.max() >= size)


def _batch(images):
    return images.shape[0] if images.ndim else 0


def _image_violations(images, limit_name, known_mask=None):
    violations = []
    if images.shape[1:] != IMAGE_SHAPE or images.ndim != 4:
        violations.append(_shape_message())
    if _batch(images) > (MAX_SAMPLE if limit_name == "max_sample_images" else MAX_SCORE):
        violations.append(_bound_message("batch", limit_name))
    if _out_of_range(images, LEVELS):
        violations.append(f"pixel values must be in [0, {LEVELS - 1}]")
    if known_mask is not None and known_mask.shape != images.shape:
        violations.append("known_mask must have the shape of images")
    return violations


def _label_violations(labels, batch_shape, batch_name, num_classes):
    if num_classes is None:
        return []
    violations = []
    if labels.shape != batch_shape:
        violations.append(f"labels must have shape [{batch_name}], one per image")
    if _out_of_range(labels, num_classes):
        violations.append(f"labels must be in [0, {num_classes - 1}]")
    return violations


def violations(signature, inputs, num_classes):
    """Our messages that `inputs` (numpy, of the signature's dtypes) should be refused with."""
    found = [f"{name} must be a scalar" for name in ("num_images", "seed", "temperature")
             if name in inputs and inputs[name].ndim != 0]
    labels = inputs.get("labels")
    if signature in ("log_likelihood", "complete"):
        limit_name = "max_score_images" if signature == "log_likelihood" else "max_sample_images"
        found += _image_violations(inputs["images"], limit_name, inputs.get("known_mask"))
        found += _label_violations(labels, (_batch(inputs["images"]),), "batch", num_classes)
    elif signature in ("sample", "sample_with_temperature"):
        count = inputs["num_images"].ravel()
        if not np.all(count >= 0):
            found.append("num_images must be >= 0")
        if not np.all(count <= MAX_SAMPLE):
            found.append(_bound_message("num_images", "max_sample_images"))
        if "temperature" in inputs and not np.all(inputs["temperature"] > 0):
            found.append("temperature must be > 0")
        found += _label_violations(labels, tuple(count), "num_images", num_classes)
    return found


# ---- the request generator -------------------------------------------------------------------

def _shape_like(rng, shape):
    """`shape` (mostly), or one of its kin: another rank, or one axis off by one."""
    roll = rng.random()
    if roll < 0.75:
        return shape
    if roll < 0.85 or not shape:
        return tuple(int(n) for n in rng.integers(0, 4, size=rng.integers(0, 6)))
    shape = list(shape)
    axis = rng.integers(len(shape))
    shape[axis] = max(0, shape[axis] + rng.choice([-1, 1]))
    return tuple(shape)


def _values(rng, shape, size, dtype):
    """Values in [0, size) mostly; sometimes one value just outside, or an extreme of int32."""
    values = rng.integers(0, size, size=shape).astype(dtype)
    if values.size and rng.random() < 0.2:
        values.flat[rng.integers(values.size)] = rng.choice([-1, size, -2**31, 2**31 - 1])
    return values


def _count(rng):
    return int(rng.choice([0, 1, 2, MAX_SAMPLE, MAX_SAMPLE + 1, MAX_SCORE, MAX_SCORE + 1, -1, -2**31, 2**31 - 1]))


def _scalar(rng, value, dtype):
    """`value` as a scalar of `dtype` (mostly), or as a vector of another length."""
    if rng.random() < 0.85:
        return np.asarray(value, dtype)
    return np.full(rng.integers(0, 3), value, dtype)


def random_request(rng, signature, num_classes):
    """Inputs (numpy, of the signature's dtypes) for one random request."""
    inputs = {}
    if signature in ("log_likelihood", "complete"):
        shape = _shape_like(rng, (_count(rng) % (MAX_SCORE + 2),) + IMAGE_SHAPE)
        inputs["images"] = _values(rng, shape, LEVELS, np.int32)
        if signature == "complete":
            inputs["known_mask"] = rng.random(_shape_like(rng, shape)) < 0.5
        batch = (_batch(inputs["images"]),)
    else:
        inputs["num_images"] = _scalar(rng, _count(rng), np.int32)
        if signature == "sample_with_temperature":
            temperature = rng.choice([rng.uniform(0.05, 3.0), 1e-30, 1e30, 0.0, -1.0, np.nan, np.inf, -np.inf],
                                     p=[0.65] + [0.05] * 7)
            inputs["temperature"] = _scalar(rng, temperature, np.float32)
        batch = tuple(max(0, int(n)) % (MAX_SCORE + 2) for n in inputs["num_images"].ravel())
    if signature != "log_likelihood":
        inputs["seed"] = _scalar(rng, rng.choice([0, 1, -1, 2**63 - 1, -2**63, rng.integers(-2**40, 2**40)]), np.int64)
    if num_classes is not None:
        inputs["labels"] = _values(rng, _shape_like(rng, batch), num_classes, np.int32)
    return inputs


def _mistyped(rng, inputs):
    """`inputs` with one input of another dtype, which TensorFlow's signature matching refuses."""
    key = rng.choice(sorted(inputs))
    other = {np.dtype(np.bool_): np.int32, np.dtype(np.float32): np.float64}.get(inputs[key].dtype, np.float32)
    return {**inputs, key: inputs[key].astype(other)}


# ---- the outcome checks ----------------------------------------------------------------------

def check_outputs(signature, inputs, outputs):
    """Outputs of a request that succeeded, against what the signature promises."""
    if signature == "log_likelihood":
        batch = len(inputs["images"])
        assert sorted(outputs) == ["bits_per_dim", "log_prob", "nll_nats"]
        for value in outputs.values():
            assert value.dtype == tf.float32 and tuple(value.shape) == (batch,)
        log_prob = outputs["log_prob"].numpy()
        assert np.all(np.isfinite(log_prob)) and np.all(log_prob <= 0)
        np.testing.assert_allclose(outputs["nll_nats"].numpy(), -log_prob)
        np.testing.assert_allclose(outputs["bits_per_dim"].numpy(), -log_prob / (np.prod(IMAGE_SHAPE) * np.log(2)),
                                   rtol=1e-6)
        return
    images = outputs["images"]
    count = len(inputs["images"]) if signature == "complete" else int(inputs["num_images"])
    assert list(outputs) == ["images"] and images.dtype == tf.uint8
    assert tuple(images.shape) == (count,) + IMAGE_SHAPE
    assert np.all(images.numpy() < LEVELS)
    if signature == "complete":
        known = inputs["known_mask"]
        np.testing.assert_array_equal(images.numpy()[known], inputs["images"][known])


def call(loaded, signature, inputs):
    """(outputs or the exception, seconds) of one request."""
    start = time.perf_counter()
    try:
        outputs = loaded.signatures[signature](**{key: tf.constant(value) for key, value in inputs.items()})
    except Exception as error:  # noqa: BLE001 (the test classifies every exception below)
        return error, time.perf_counter() - start
    return outputs, time.perf_counter() - start


def one_image_request(signature, num_classes):
    """A valid request for one image."""
    image = np.zeros((1,) + IMAGE_SHAPE, np.int32)
    inputs = {"log_likelihood": {"images": image}, "complete": {"images": image, "known_mask": image > 0},
              "sample": {"num_images": np.int32(1)},
              "sample_with_temperature": {"num_images": np.int32(1), "temperature": np.float32(1)}}[signature]
    if signature != "log_likelihood":
        inputs["seed"] = np.int64(0)
    if num_classes is not None:
        inputs["labels"] = np.zeros(1, np.int32)
    return inputs


@slow
def test_every_signature_survives_random_requests(served):
    loaded, num_classes = served
    rng = np.random.default_rng(18)
    counts = {"succeeded": 0, "refused": 0, "signature mismatch": 0}
    slowest_refusal = 0.0
    for signature in [name for name, inputs in SIGNATURE_INPUTS.items() if inputs]:
        # A signature's first call builds its graph (once per server); the timings are of requests.
        warm_up, _ = call(loaded, signature, one_image_request(signature, num_classes))
        check_outputs(signature, one_image_request(signature, num_classes), warm_up)
        for case in range(CASES_PER_SIGNATURE):
            inputs = random_request(rng, signature, num_classes)
            mistyped = rng.random() < 0.05
            if mistyped:
                inputs = _mistyped(rng, inputs)
            expected = violations(signature, inputs, num_classes)
            outcome, seconds = call(loaded, signature, inputs)
            where = f"{signature} case {case}: {({k: (v.dtype.name, v.shape) for k, v in inputs.items()})}"
            if mistyped:
                # TensorFlow's own signature matching, before our graph runs.
                assert isinstance(outcome, tf.errors.InvalidArgumentError), f"{where}: {outcome!r}"
                assert "was expected to be a" in str(outcome), f"{where}: {outcome}"
                counts["signature mismatch"] += 1
            elif expected:
                assert isinstance(outcome, tf.errors.InvalidArgumentError), \
                    f"{where} should be refused with one of {expected}; got {str(outcome)[:300]}"
                assert any(message in str(outcome) for message in expected), \
                    f"{where} refused with another message than {expected}: {str(outcome)[:500]}"
                assert seconds < FAST, f"{where} took {seconds:.2f} s to be refused"
                slowest_refusal = max(slowest_refusal, seconds)
                counts["refused"] += 1
            else:
                assert not isinstance(outcome, Exception), f"{where} should succeed; got {str(outcome)[:500]}"
                check_outputs(signature, inputs, outputs=outcome)
                counts["succeeded"] += 1
    print(f"\n{sum(counts.values())} random requests: {counts}; slowest refusal {slowest_refusal * 1000:.0f} ms")
    # The generator reaches every outcome often enough to matter.
    assert min(counts.values()) >= 5 and counts["succeeded"] >= 60 and counts["refused"] >= 150, counts


@slow
def test_missing_or_extra_inputs_are_refused_by_signature_binding(served):
    loaded, num_classes = served
    with pytest.raises(TypeError, match="missing a required argument: 'seed'"):
        loaded.signatures["sample"](num_images=tf.constant(1), **_labels(num_classes, 1))
    with pytest.raises(TypeError, match="unexpected keyword argument 'extra'"):
        loaded.signatures["log_likelihood"](images=tf.zeros((1,) + IMAGE_SHAPE, tf.int32), extra=tf.constant(1),
                                            **_labels(num_classes, 1))


@slow
def test_limits_signature_returns_the_export_bounds(served):
    loaded, _ = served
    limits = loaded.signatures["limits"]()
    assert {key: (value.dtype, value.shape.rank, int(value)) for key, value in limits.items()} == {
        "max_sample_images": (tf.int32, 0, MAX_SAMPLE), "max_score_images": (tf.int32, 0, MAX_SCORE)}


def _labels(num_classes, count):
    return {} if num_classes is None else {"labels": tf.zeros([count], tf.int32)}


@slow
def test_empty_batches_give_empty_outputs(served):
    loaded, num_classes = served
    empty = tf.zeros((0,) + IMAGE_SHAPE, tf.int32)
    scores = loaded.signatures["log_likelihood"](images=empty, **_labels(num_classes, 0))
    assert {key: (value.dtype, tuple(value.shape)) for key, value in scores.items()} == {
        key: (tf.float32, (0,)) for key in ("log_prob", "nll_nats", "bits_per_dim")}
    for signature, inputs in (("complete", {"images": empty, "known_mask": tf.zeros(empty.shape, tf.bool)}),
                              ("sample", {"num_images": tf.constant(0)})):
        images = loaded.signatures[signature](seed=tf.constant(0, tf.int64), **inputs,
                                              **_labels(num_classes, 0))["images"]
        assert images.dtype == tf.uint8 and tuple(images.shape) == (0,) + IMAGE_SHAPE


@slow
def test_a_huge_request_is_refused_at_once_without_allocating(served):
    loaded, num_classes = served
    # 2**31 - 1 images of 3 x 3: 77 GB of int32 pixels and 9 network steps over all of them.
    inputs = {"num_images": tf.constant(2**31 - 1), "seed": tf.constant(0, tf.int64), **_labels(num_classes, 1)}
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    start = time.perf_counter()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"num_images must be <= 3 \(the max_sample_images of "
                                                             r"this export\); received\] \[2147483647\]"):
        loaded.signatures["sample"](**inputs)
    assert time.perf_counter() - start < FAST
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 100_000


def test_export_refuses_bounds_that_are_not_positive_integers(tmp_path, capsys):
    model = pk.build_model("pixelcnn", IMAGE_SHAPE, LEVELS, num_layers=1, hidden=4)
    for bad in (0, -1, 2**31, 1.5, True, None):
        with pytest.raises(ValueError, match=rf"max_score_images to be a positive integer.*Received "
                                             rf"max_score_images={bad!r}\."):
            export_saved_model(model, tmp_path / "x", max_score_images=bad)
    model.save(tmp_path / "model.keras")
    with pytest.raises(SystemExit):
        export_main(["--run-dir", str(tmp_path / "model.keras"), "--out", str(tmp_path), "--name", "m",
                     "--max-sample-images", "0"])
    assert "argument --max-sample-images: must be an integer in [1, 2147483647]; received 0" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_client_builds_a_limits_request():
    from export import client

    assert client.rest_request("m", "limits", {}) == ("/v1/models/m:predict", {"signature_name": "limits", "inputs": {}})
    with pytest.raises(ValueError, match=r"signature limits takes inputs \[\]; received \['seed'\]"):
        client.rest_request("m", "limits", {"seed": 0})
