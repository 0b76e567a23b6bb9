"""Test-split negative log-likelihood of a trained run.

    python -m training.evaluate --run-dir runs/pixelcnn_fashion_mnist

Prints bits/dim for multi-level data and nats per image for binary data (the paper's units), with
the number of test images scored.
"""

import argparse
import json
import pathlib

from training.cli import RunError, run_cli


def evaluate_model(model, splits, batch_size=256, print_fn=print):
    """Score the whole test split; returns (mean nats per image, mean bits/dim, number of images)."""
    import numpy as np
    import tensorflow as tf

    from pixel_keras.likelihood import bits_per_dim_from_nats, log_prob_from_logits

    score = tf.function(lambda images: -log_prob_from_logits(model(images, training=False), images))
    nats = np.concatenate([
        score(tf.cast(batch, tf.int32)).numpy()
        for batch in splits.test.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    ])
    mean_nats = float(nats.mean())
    mean_bits = float(bits_per_dim_from_nats(mean_nats, splits.image_shape))
    headline = (f"{mean_nats:.2f} nats per image ({mean_bits:.4f} bits/dim)" if splits.num_levels == 2
                else f"{mean_bits:.4f} bits/dim ({mean_nats:.1f} nats per image)")
    print_fn(f"test NLL on {len(nats)} {splits.name} test images: {headline}")
    return mean_nats, mean_bits, len(nats)


def report(run_dir, gallery_png):
    print(f"sample gallery: {gallery_png}")
    print(f"TensorBoard: tensorboard --logdir {run_dir / 'logs'}")


def load_run(run_dir):
    """(model, splits) of a run directory: its best model and the dataset it was trained on."""
    import keras

    from pixel_keras.data import load_dataset

    run_dir = pathlib.Path(run_dir)
    config_path, model_path = run_dir / "run.json", run_dir / "best.keras"
    if not config_path.exists():
        raise RunError(f"{run_dir} is not a run directory (no run.json)")
    if not model_path.exists():
        raise RunError(f"{run_dir} has no best.keras yet: train at least one epoch first")
    config = json.loads(config_path.read_text())
    try:
        model = keras.models.load_model(model_path)
    except Exception as error:  # Keras raises many types for a damaged file
        raise RunError(f"cannot load {model_path}: {str(error).splitlines()[0]}") from None
    splits = load_dataset(config["dataset"], config["data_dir"], config["image_size"], config["channels"],
                          config["seed"])
    return model, splits


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, help="directory written by python -m training.run")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    model, splits = load_run(args.run_dir)
    evaluate_model(model, splits, args.batch_size)


if __name__ == "__main__":
    run_cli(main)
