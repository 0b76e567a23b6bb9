"""Checks an exported SavedModel in a process that can import TensorFlow and nothing of ours.

    python serving_check.py EXPORT_DIR EXPECTED.npz

EXPECTED.npz holds `images` (real images) and `log_prob` (the Keras model's values). Exits non-zero
with an AssertionError naming the failed check.
"""

import importlib.abc
import sys


class _Refuse(importlib.abc.MetaPathFinder):
    """Make our packages unimportable, so the export must stand on TensorFlow alone (an attempt to
    import them fails the check; `import tensorflow` itself imports Keras for `tf.keras`)."""

    BLOCKED = {"pixel_keras", "training", "export", "benchmarks"}

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
            raise ImportError(f"{name} is blocked in this process")
        return None


sys.meta_path.insert(0, _Refuse())

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def expect_error(function, message, **inputs):
    try:
        function(**{key: tf.constant(value) for key, value in inputs.items()})
    except tf.errors.InvalidArgumentError as error:
        assert message in str(error), f"expected {message!r} in the error, got: {str(error)[:500]}"
        return
    raise AssertionError(f"no error for a request that should fail with {message!r}")


def main(export_dir, expected_path):
    expected = np.load(expected_path)
    images, log_prob = expected["images"].astype(np.int32), expected["log_prob"]
    loaded = tf.saved_model.load(export_dir)
    for name in ("log_likelihood", "serving_default", "sample", "sample_with_temperature", "complete", "limits"):
        assert name in loaded.signatures, f"signature {name} missing: {list(loaded.signatures)}"
    limits = {key: int(value) for key, value in loaded.signatures["limits"]().items()}
    assert limits == {"max_sample_images": 64, "max_score_images": 1024}, limits  # the export's defaults

    outputs = loaded.signatures["log_likelihood"](images=tf.constant(images))
    np.testing.assert_allclose(outputs["log_prob"].numpy(), log_prob, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outputs["nll_nats"].numpy(), -log_prob, rtol=1e-5, atol=1e-5)
    dims = np.prod(images.shape[1:])
    np.testing.assert_allclose(outputs["bits_per_dim"].numpy(), -log_prob / dims / np.log(2), rtol=1e-5)
    default = loaded.signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_allclose(default["log_prob"].numpy(), log_prob, rtol=1e-5, atol=1e-5)

    sample = loaded.signatures["sample"]
    first = sample(num_images=tf.constant(3), seed=tf.constant(7, tf.int64))["images"]
    again = sample(num_images=tf.constant(3), seed=tf.constant(7, tf.int64))["images"]
    other = sample(num_images=tf.constant(3), seed=tf.constant(8, tf.int64))["images"]
    assert first.dtype == tf.uint8 and tuple(first.shape) == (3,) + images.shape[1:], (first.dtype, first.shape)
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert not np.array_equal(first.numpy(), other.numpy()), "a different seed gave the same samples"
    num_levels = int(expected["num_levels"])
    assert first.numpy().max() < num_levels
    cold = loaded.signatures["sample_with_temperature"](
        num_images=tf.constant(2), seed=tf.constant(7, tf.int64), temperature=tf.constant(0.5))["images"]
    assert tuple(cold.shape) == (2,) + images.shape[1:]

    known = np.zeros(images.shape, bool)
    known[:, : images.shape[1] // 2] = True
    filled = loaded.signatures["complete"](images=tf.constant(images), known_mask=tf.constant(known),
                                           seed=tf.constant(1, tf.int64))["images"].numpy()
    assert filled.dtype == np.uint8
    np.testing.assert_array_equal(filled[known], images[known])

    height, width, channels = images.shape[1:]
    shape_message = f"images must have shape [batch, {height}, {width}, {channels}]"
    range_message = f"pixel values must be in [0, {num_levels - 1}]"
    expect_error(loaded.signatures["log_likelihood"], shape_message,
                 images=np.zeros((1, height + 1, width, channels), np.int32))
    expect_error(loaded.signatures["log_likelihood"], shape_message,
                 images=np.zeros((1, height, width, channels + 1), np.int32))
    expect_error(loaded.signatures["log_likelihood"], range_message,
                 images=np.full((1, height, width, channels), num_levels, np.int32))
    expect_error(loaded.signatures["log_likelihood"], range_message,
                 images=np.full((1, height, width, channels), -1, np.int32))
    expect_error(sample, "num_images must be >= 0", num_images=np.int32(-1), seed=np.int64(0))
    expect_error(loaded.signatures["sample_with_temperature"], "temperature must be > 0",
                 num_images=np.int32(1), seed=np.int64(0), temperature=np.float32(0.0))
    expect_error(loaded.signatures["complete"], "known_mask must have the shape of images",
                 images=images, known_mask=known[:, :-1], seed=np.int64(0))
    expect_error(sample, "num_images must be <= 64 (the max_sample_images of this export)",
                 num_images=np.int32(65), seed=np.int64(0))
    expect_error(loaded.signatures["log_likelihood"], "batch must be <= 1024 (the max_score_images of this export)",
                 images=np.zeros((1025, height, width, channels), np.int32))
    expect_error(sample, "num_images must be a scalar", num_images=np.int32([1]), seed=np.int64(0))

    empty = np.zeros((0, height, width, channels), np.int32)
    scores = loaded.signatures["log_likelihood"](images=tf.constant(empty))
    assert all(value.dtype == tf.float32 and tuple(value.shape) == (0,) for value in scores.values()), scores
    filled = loaded.signatures["complete"](images=tf.constant(empty), known_mask=tf.constant(empty > 0),
                                           seed=tf.constant(0, tf.int64))["images"]
    assert filled.dtype == tf.uint8 and tuple(filled.shape) == empty.shape, (filled.dtype, filled.shape)
    print("serving checks passed")


if __name__ == "__main__":
    main(*sys.argv[1:])
