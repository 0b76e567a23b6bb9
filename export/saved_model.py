"""Export a trained model as a SavedModel that TensorFlow Serving loads.

    python -m export.saved_model --run-dir runs/pixelcnn_fashion_mnist --out models --name pixelcnn

writes `models/pixelcnn/<version>/` (the next free version unless --version is given) with the
signatures `log_likelihood` (also `serving_default`), `sample`, `sample_with_temperature` and
`complete`. Loading it needs only TensorFlow.
"""

import argparse
import os
import pathlib
import shutil

from training.cli import RunError, run_cli

# Inputs of each signature: name -> (dtype, rank); every axis of the images is left open so that
# a wrong height, width or channel count reaches the graph's own check. The first signature is
# also `serving_default`. Clients (export/client.py) build their requests from this table.
SIGNATURE_INPUTS = {
    "log_likelihood": {"images": ("int32", 4)},
    "sample": {"num_images": ("int32", 0), "seed": ("int64", 0)},
    "sample_with_temperature": {"num_images": ("int32", 0), "seed": ("int64", 0), "temperature": ("float32", 0)},
    "complete": {"images": ("int32", 4), "known_mask": ("bool", 4), "seed": ("int64", 0)},
}


def _serving_functions(model, jit_compile=False):
    """The exported functions, with the request checks as graph asserts (Serving runs no Python)."""
    import tensorflow as tf

    from pixel_keras.likelihood import bits_per_dim_from_nats, log_prob_from_logits, model_spec
    from pixel_keras.sampling import Sampler

    image_shape, num_levels = model_spec(model)
    height, width, channels = image_shape
    sampler = Sampler(model, jit_compile=jit_compile)
    expected = f"[batch, {height}, {width}, {channels}]"

    def checked(images):
        checks = [
            tf.debugging.assert_equal(tf.shape(images)[1:], tf.constant(image_shape, tf.int32),
                                      message=f"images must have shape {expected}"),
            tf.debugging.assert_non_negative(images, message=f"pixel values must be in [0, {num_levels - 1}]"),
            tf.debugging.assert_less(images, num_levels, message=f"pixel values must be in [0, {num_levels - 1}]"),
        ]
        with tf.control_dependencies(checks):
            return tf.ensure_shape(tf.identity(images), (None,) + image_shape)

    def log_likelihood(images):
        images = checked(images)
        log_prob = log_prob_from_logits(model(images, training=False), images)
        nats = -log_prob
        return {"log_prob": log_prob, "nll_nats": nats, "bits_per_dim": bits_per_dim_from_nats(nats, image_shape)}

    def sample_with_temperature(num_images, seed, temperature):
        checks = [
            tf.debugging.assert_non_negative(num_images, message="num_images must be >= 0"),
            tf.debugging.assert_positive(temperature, message="temperature must be > 0"),
        ]
        with tf.control_dependencies(checks):
            shape = tf.concat([[num_images], tf.constant(image_shape, tf.int32)], axis=0)
        images = sampler.fill(tf.zeros(shape, tf.int32), tf.zeros(shape, tf.bool), seed, temperature)
        return {"images": tf.cast(images, tf.uint8)}

    def sample(num_images, seed):
        return sample_with_temperature(num_images, seed, tf.constant(1.0))

    def complete(images, known_mask, seed):
        mask_check = tf.debugging.assert_equal(tf.shape(known_mask), tf.shape(images),
                                               message="known_mask must have the shape of images")
        with tf.control_dependencies([mask_check]):
            images, known_mask = checked(images), tf.identity(known_mask)
        filled = sampler.fill(images, tf.ensure_shape(known_mask, (None,) + image_shape), seed, tf.constant(1.0))
        return {"images": tf.cast(filled, tf.uint8)}

    return {"log_likelihood": log_likelihood, "sample": sample, "sample_with_temperature": sample_with_temperature,
            "complete": complete}


def export_saved_model(model, export_dir, jit_compile=False):
    """Write `model`'s serving signatures to the SavedModel directory `export_dir`.

    Images are int32 [batch, H, W, C] with values in [0, levels); the shape is checked in the graph,
    so a wrong request fails with a message instead of a shape error deep inside the model.
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    functions = _serving_functions(model, jit_compile)
    for name, inputs in SIGNATURE_INPUTS.items():
        signature = [tf.TensorSpec((None,) * rank, dtype, name=key) for key, (dtype, rank) in inputs.items()]
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
    parser = argparse.ArgumentParser(prog="python -m export.saved_model", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, help="run directory (its best.keras) or a .keras file")
    parser.add_argument("--out", required=True, help="model base directory that TensorFlow Serving watches")
    parser.add_argument("--name", required=True, help="model name (the REST/gRPC model_spec name)")
    parser.add_argument("--version", type=int, default=None, help="version number (default: next free)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version")
    parser.add_argument("--jit-compile", action="store_true", help="XLA-compile the sampling loop")
    args = parser.parse_args(argv)
    if not args.name or "/" in args.name or args.name.startswith("."):
        raise RunError(f"--name must be a plain directory name; received {args.name!r}")
    from training.sample import load_model_file

    model, _ = load_model_file(args.run_dir)
    target = version_directory(args.out, args.name, args.version, args.overwrite)
    # Written next to the version and renamed into place, so Serving never sees half an export.
    staging = target.parent / f".staging-{target.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        export_saved_model(model, staging, args.jit_compile)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"exported {', '.join(SIGNATURE_INPUTS)} (serving_default = log_likelihood) to {target}")


if __name__ == "__main__":
    run_cli(main)
