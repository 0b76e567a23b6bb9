"""Export a trained model as a SavedModel that TensorFlow Serving loads.

    python -m export.saved_model --run-dir runs/pixelcnn_fashion_mnist --out models --name pixelcnn

writes `models/pixelcnn/<version>/` (the next free version unless --version is given) with the
signatures `log_likelihood` (also `serving_default`), `sample`, `sample_with_temperature` and
`complete`; a class-conditional model's signatures also take `labels`, int32 [batch] (one class per
image; for `sample*`, [num_images]). One request is bounded (--max-sample-images images for
`sample*` and `complete`, --max-score-images for `log_likelihood`); the zero-input `limits`
signature returns both. Loading it needs only TensorFlow.
"""

import argparse
import numbers
import os
import pathlib
import shutil

from pixel_keras.cli import (RunError, add_verbose_flag, check_directory, int_range, program_name, run_cli,
                             turn_off_the_failing_remapper)
from pixel_keras.extras import install_note

# Inputs of each signature: name -> (dtype, rank). The SavedModel declares only the dtypes (see
# export_saved_model); these ranks and the image shape are checked in the graph. The first signature
# is also `serving_default`. Clients (export/client.py) build their requests from this table.
# `limits` takes nothing and returns this export's per-request bounds (int32 scalars).
SIGNATURE_INPUTS = {
    "log_likelihood": {"images": ("int32", 4)},
    "sample": {"num_images": ("int32", 0), "seed": ("int64", 0)},
    "sample_with_temperature": {"num_images": ("int32", 0), "seed": ("int64", 0), "temperature": ("float32", 0)},
    "complete": {"images": ("int32", 4), "known_mask": ("bool", 4), "seed": ("int64", 0)},
    "limits": {},
}

# Default per-request bounds (images), so that one request cannot hold a server for long: sampling
# runs H*W*C network steps per request, scoring one pass (README "Serving" gives the times).
MAX_SAMPLE_IMAGES = 64
MAX_SCORE_IMAGES = 1024


def signature_inputs(num_classes=None):
    """SIGNATURE_INPUTS, with `labels` int32 [batch] added to every signature that takes a batch
    (all but `limits`) of a class-conditional model (`num_classes` not None)."""
    if num_classes is None:
        return SIGNATURE_INPUTS
    return {name: {**inputs, "labels": ("int32", 1)} if inputs else inputs for name, inputs in SIGNATURE_INPUTS.items()}


class _RequestChecks:
    """The checks of one export's requests, as graph asserts (Serving runs no Python): shapes and
    ranks, values, labels and the per-request bounds, each failing with a message that names what
    was expected and what was received. Built from the model's image shape, levels and classes."""

    def __init__(self, image_shape, num_levels, num_classes, max_sample_images, max_score_images):
        self.image_shape, self.num_levels, self.num_classes = image_shape, num_levels, num_classes
        self.max_sample_images, self.max_score_images = max_sample_images, max_score_images

    @staticmethod
    def check(condition, message, *received):
        """A graph assert that fails with `message` and the values received; returns the condition
        (a scalar, computed so that it cannot fail itself on an input of any rank)."""
        import tensorflow as tf

        condition = tf.reduce_all(tf.reshape(condition, [-1]))
        tf.debugging.Assert(condition, [f"{message}; received", *received])
        return condition

    @staticmethod
    def shape_is(tensor, shape):
        """Whether `tensor` has the shape `shape` (an int32 vector): False, not an error, for another
        rank (both are padded with -1 to one length before they are compared)."""
        import tensorflow as tf

        actual = tf.shape(tensor)
        padded_actual = tf.concat([actual, tf.fill(tf.shape(shape), -1)], axis=0)
        padded_shape = tf.concat([shape, tf.fill(tf.shape(actual), -1)], axis=0)
        return tf.logical_and(tf.equal(tf.size(actual), tf.size(shape)),
                              tf.reduce_all(tf.equal(padded_actual, padded_shape)))

    @staticmethod
    def batch_of(images):
        """The number of images: the first axis (0 for a scalar, which the shape check refuses)."""
        import tensorflow as tf

        return tf.reduce_sum(tf.shape(images)[:1])

    def in_range(self, values, size, message):
        """Values in [0, size); an empty tensor passes (its min is the dtype's max, its max the min)."""
        import tensorflow as tf

        flat = tf.reshape(values, [-1])
        low, high = tf.reduce_min(flat), tf.reduce_max(flat)
        return self.check(tf.logical_and(low >= 0, high < size), message, low, high)

    def bound(self, count, limit_name, count_name):
        """`count` within the export's bound `limit_name` (max_sample_images or max_score_images)."""
        limit = getattr(self, limit_name)
        return self.check(count <= limit, f"{count_name} must be <= {limit} (the {limit_name} of this export)", count)

    def scalars(self, **scalars):
        """Each of `scalars` (name=tensor) is a scalar."""
        import tensorflow as tf

        return [self.check(self.shape_is(value, tf.zeros([0], tf.int32)), f"{name} must be a scalar", tf.shape(value))
                for name, value in scalars.items()]

    def images(self, images, limit_name, known_mask=None):
        """`images` of the model's shape, within the bound `limit_name` and the levels; a
        `known_mask` (completion) of their shape."""
        import tensorflow as tf

        height, width, channels = self.image_shape
        checks = [self.check(self.shape_is(images, tf.concat([tf.shape(images)[:1], self.image_shape], axis=0)),
                             f"images must have shape [batch, {height}, {width}, {channels}]", tf.shape(images)),
                  self.bound(self.batch_of(images), limit_name, "batch"),
                  self.in_range(images, self.num_levels, f"pixel values must be in [0, {self.num_levels - 1}]")]
        if known_mask is not None:
            checks.append(self.check(self.shape_is(known_mask, tf.shape(images)),
                                     "known_mask must have the shape of images", tf.shape(known_mask)))
        return checks

    def labels(self, labels, batch, batch_name):
        """Checks of `labels` against the batch size and the classes; none for an unconditional model."""
        import tensorflow as tf

        if labels is None:
            return []
        return [self.check(self.shape_is(labels, tf.reshape(batch, [-1])),
                           f"labels must have shape [{batch_name}], one per image", tf.shape(labels)),
                self.in_range(labels, self.num_classes, f"labels must be in [0, {self.num_classes - 1}]")]


def _when_valid(checks, work, refused):
    """`work()` where every check holds, else `refused()` (empty outputs; the request fails with
    the checks' messages). A data dependency: TensorFlow's optimiser keeps no order between graph
    asserts and the ops after them, but no op of `work` can start before the checks."""
    import tensorflow as tf

    return tf.cond(tf.reduce_all(tf.stack(checks)), work, refused)


def _as_images(images, image_shape):
    """A request's images (or known_mask) in the model's shape, once the checks have passed."""
    import tensorflow as tf

    return tf.reshape(images, (-1,) + image_shape)


def _as_labels(labels):
    """The model's extra inputs: [labels] for a conditional model, [] for an unconditional one."""
    import tensorflow as tf

    return [] if labels is None else [tf.reshape(labels, [-1])]


def _no_images(image_shape):
    """The empty output of a refused `sample*` or `complete` request."""
    import tensorflow as tf

    return {"images": tf.zeros((0,) + image_shape, tf.uint8)}


def _log_likelihood_signature(checks, model):
    """`log_likelihood(images, labels=None)`: the images' log-probability, NLL and bits/dim."""
    import tensorflow as tf

    from pixel_keras.head_registry import observed_view
    from pixel_keras.losses import bits_per_dim_from_nats

    observed = observed_view(model)
    image_shape = checks.image_shape

    def log_likelihood(images, labels=None):
        requested = checks.images(images, "max_score_images") + checks.labels(labels, checks.batch_of(images), "batch")

        def score():  # the head's observed level, as pk.log_prob scores it (a mixture: K logistics, not K x L)
            valid = _as_images(images, image_shape)
            output = observed.model([valid, *_as_labels(labels)] if labels is not None else valid, training=False)
            return tf.reduce_sum(observed.log_probs(output, valid), axis=[1, 2, 3])

        # An empty batch skips the network too (a convolution over 0 images fails in TensorFlow).
        log_prob = _when_valid(requested + [checks.batch_of(images) > 0], score, lambda: tf.zeros([0], tf.float32))
        nats = -log_prob
        return {"log_prob": log_prob, "nll_nats": nats, "bits_per_dim": bits_per_dim_from_nats(nats, image_shape)}

    return log_likelihood


def _sample_with_temperature_signature(checks, sampler):
    """`sample_with_temperature(num_images, seed, temperature, labels=None)`: new images."""
    import tensorflow as tf

    def sample_with_temperature(num_images, seed, temperature, labels=None):
        requested = checks.scalars(num_images=num_images, seed=seed, temperature=temperature) + [
            checks.check(num_images >= 0, "num_images must be >= 0", num_images),
            checks.bound(num_images, "max_sample_images", "num_images"),
            checks.check(temperature > 0, "temperature must be > 0", temperature),
            *checks.labels(labels, num_images, "num_images")]

        def draw():
            shape = tf.concat([tf.reshape(num_images, [1]), checks.image_shape], axis=0)
            images = sampler.fill(tf.zeros(shape, tf.int32), tf.zeros(shape, tf.bool), tf.reshape(seed, []),
                                  tf.reshape(temperature, []), *_as_labels(labels))
            return {"images": tf.cast(images, tf.uint8)}

        return _when_valid(requested, draw, lambda: _no_images(checks.image_shape))

    return sample_with_temperature


def _sample_signature(sample_with_temperature):
    """`sample(num_images, seed, labels=None)`: `sample_with_temperature` at temperature 1."""
    import tensorflow as tf

    def sample(num_images, seed, labels=None):
        return sample_with_temperature(num_images, seed, tf.constant(1.0), labels)

    return sample


def _complete_signature(checks, sampler):
    """`complete(images, known_mask, seed, labels=None)`: the unknown sub-pixels of `images` drawn."""
    import tensorflow as tf

    def complete(images, known_mask, seed, labels=None):
        requested = checks.images(images, "max_sample_images", known_mask) + checks.scalars(seed=seed)
        requested += checks.labels(labels, checks.batch_of(images), "batch")

        def fill():
            filled = sampler.fill(_as_images(images, checks.image_shape), _as_images(known_mask, checks.image_shape),
                                  tf.reshape(seed, []), tf.constant(1.0), *_as_labels(labels))
            return {"images": tf.cast(filled, tf.uint8)}

        return _when_valid(requested, fill, lambda: _no_images(checks.image_shape))

    return complete


def _limits_signature(checks):
    """`limits()`: this export's per-request bounds, int32 scalars."""
    import tensorflow as tf

    def limits():
        return {"max_sample_images": tf.constant(checks.max_sample_images, tf.int32),
                "max_score_images": tf.constant(checks.max_score_images, tf.int32)}

    return limits


def _serving_functions(model, jit_compile=False, max_sample_images=MAX_SAMPLE_IMAGES,
                       max_score_images=MAX_SCORE_IMAGES):
    """The exported functions by signature name, with the request checks as graph asserts.

    Every check (shapes and ranks, values, labels, the per-request bound) runs before any work, so
    a request over the bound is refused before anything of its size is allocated or any network
    pass runs.
    """
    from pixel_keras.inspection import model_spec, num_classes_of
    from pixel_keras.sampling import Sampler

    image_shape, num_levels = model_spec(model)
    checks = _RequestChecks(image_shape, num_levels, num_classes_of(model), max_sample_images, max_score_images)
    sampler = Sampler(model, jit_compile=jit_compile)
    sample_with_temperature = _sample_with_temperature_signature(checks, sampler)
    return {"log_likelihood": _log_likelihood_signature(checks, model),
            "sample": _sample_signature(sample_with_temperature), "sample_with_temperature": sample_with_temperature,
            "complete": _complete_signature(checks, sampler), "limits": _limits_signature(checks)}


def export_saved_model(model, export_dir, jit_compile=False, max_sample_images=MAX_SAMPLE_IMAGES,
                       max_score_images=MAX_SCORE_IMAGES):
    """Write `model`'s serving signatures to the SavedModel directory `export_dir`.

    Images are int32 [batch, H, W, C] with values in [0, levels); the shape is checked in the graph,
    so a wrong request fails with a message instead of a shape error deep inside the model.
    `max_sample_images` bounds the images of one `sample*` or `complete` request,
    `max_score_images` those of one `log_likelihood` request (the `limits` signature returns both).
    """
    import keras
    import tensorflow as tf

    for name, value in (("max_sample_images", max_sample_images), ("max_score_images", max_score_images)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value < 2**31:
            raise ValueError(f"Expected {name} to be a positive integer below 2**31. Received {name}={value!r}.")
    archive = keras.export.ExportArchive()
    archive.track(model)
    from pixel_keras.inspection import num_classes_of

    functions = _serving_functions(model, jit_compile, max_sample_images, max_score_images)
    for name, inputs in signature_inputs(num_classes_of(model)).items():
        # Declared without a shape: TensorFlow (and Serving, tensorflow/serving#1436) checks a
        # request's dtypes against the signature but not its ranks, and its optimiser folds a
        # declared rank into the graph, where a request of another rank would then break the
        # graph's own checks. The ranks of the table are checked in the graph instead.
        signature = [tf.TensorSpec(None, dtype, name=key) for key, (dtype, _) in inputs.items()]
        archive.add_endpoint(name, functions[name], input_signature=signature)
    archive.write_out(str(export_dir), verbose=False)


def version_directory(models_dir, name, version=None, overwrite=False):
    """`models_dir/name/version`: the next free integer version unless given; never an existing
    one unless `overwrite`."""
    base = pathlib.Path(models_dir) / name
    if version is None:
        existing = [int(p.name) for p in base.glob("*") if p.is_dir() and p.name.isdigit()]
        version = max(existing, default=0) + 1
    if version < 1:
        raise RunError(f"--version must be a positive integer; received {version}")
    target = base / str(version)
    if target.exists() and not overwrite:
        raise RunError(f"{target} exists; choose another --version or pass --overwrite")
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(prog=program_name("export.saved_model"), description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True,
                        help="run directory (its best.keras), a .keras file or pretrained:NAME (a shipped model)")
    parser.add_argument("--out", required=True, help="model base directory that TensorFlow Serving watches")
    parser.add_argument("--name", required=True, help="model name (the REST/gRPC model_spec name)")
    parser.add_argument("--version", type=int_range(1, 2**63 - 1), default=None,
                        help="version number (default: next free)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version")
    parser.add_argument("--jit-compile", action="store_true", help="XLA-compile the sampling loop")
    parser.add_argument("--max-sample-images", type=int_range(1, 2**31 - 1), default=MAX_SAMPLE_IMAGES,
                        help=f"most images one sample/complete request may ask for (default {MAX_SAMPLE_IMAGES})")
    parser.add_argument("--max-score-images", type=int_range(1, 2**31 - 1), default=MAX_SCORE_IMAGES,
                        help=f"most images one log_likelihood request may score (default {MAX_SCORE_IMAGES})")
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    if not args.name or "/" in args.name or args.name.startswith("."):
        raise RunError(f"--name must be a plain directory name; received {args.name!r}")
    check_directory(args.out, "--out")  # before Keras and the model are loaded
    from pixel_keras.io import load_model_file, model_file_path

    model_file_path(args.run_dir)  # a bad name or file refused before Keras and TensorFlow load
    turn_off_the_failing_remapper()
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RunError(f"the SavedModel export is a TensorFlow feature: run it with KERAS_BACKEND=tensorflow (the "
                       f"backend now is {keras.backend.backend()}); a .keras file saved under any backend loads there"
                       + install_note("tensorflow"))

    model, _ = load_model_file(args.run_dir)
    target = version_directory(args.out, args.name, args.version, args.overwrite)
    # Written next to the version and renamed into place, so Serving never sees half an export.
    staging = target.parent / f".staging-{target.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        export_saved_model(model, staging, args.jit_compile, args.max_sample_images, args.max_score_images)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"exported {', '.join(SIGNATURE_INPUTS)} (serving_default = log_likelihood; at most "
          f"{args.max_sample_images} images per sample/complete request, {args.max_score_images} per "
          f"log_likelihood request) to {target}")


if __name__ == "__main__":
    run_cli(main)
