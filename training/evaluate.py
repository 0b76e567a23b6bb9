"""Test-split negative log-likelihood of a trained run.

    python -m training.evaluate --run-dir runs/pixelcnn_fashion_mnist

Prints bits/dim for multi-level data and nats per image for binary data (the paper's units), with
the number of test images scored. A class-conditional run is scored given each image's label, and
also used as a classifier: the share of test images whose own label maximises log p(image | label)
(one pass over the test split per class; `--no-classify` skips it).
"""

import argparse
import pathlib

from pixel_keras.cli import (RunError, add_verbose_flag, positive_int, program_name, run_cli,
                             turn_off_the_failing_remapper)
from pixel_keras.io import model_file_path
from pixel_keras.pretrained import is_pretrained_reference


def _nll_nats(model):
    """A function (images, labels or None) -> nats per image under `model`, numpy in and out:
    `pk.log_prob`, compiled once per model on every Keras backend."""
    from pixel_keras.likelihood import log_prob

    return lambda images, labels=None: -log_prob(model, images, batch_size=max(1, len(images)), labels=labels)


def _test_batches(splits, batch_size):
    """(int32 images, int32 labels or None) numpy batches of the test split (of (image, label)
    pairs for a class-conditional model): of its arrays where the source is in memory (no
    TensorFlow needed), else of tf.data."""
    import numpy as np

    if splits.arrays is not None:
        images, labels = splits.arrays["test"], splits.label_arrays["test"] if splits.paired else None
        for start in range(0, len(images), batch_size):
            yield (images[start:start + batch_size].astype(np.int32),
                   None if labels is None else labels[start:start + batch_size].astype(np.int32))
        return
    import tensorflow as tf

    for batch in splits.test.batch(batch_size).prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
        images, labels = batch if isinstance(batch, tuple) else (batch, None)
        yield images.astype(np.int32), None if labels is None else labels.astype(np.int32)


def evaluate_model(model, splits, batch_size=256, print_fn=print):
    """Score the whole test split (given each image's label, for a class-conditional model);
    returns (mean nats per image, mean bits/dim, number of images). A multi-scale model's two
    stages come from `multiscale.log_prob_stages` in the same pass."""
    import numpy as np

    from pixel_keras.losses import bits_per_dim_from_nats
    from pixel_keras.multiscale import log_prob_stages, multiscale_factor

    factor = multiscale_factor(model)
    score, small_nats = _nll_nats(model), []

    def batch_nats(images, labels):
        if not factor:
            return score(images, labels)
        small, rest = log_prob_stages(model, images, batch_size=max(1, len(images)), labels=labels)
        small_nats.append(-small)
        return -(small + rest)

    nats = np.concatenate([batch_nats(images, labels) for images, labels in _test_batches(splits, batch_size)])
    mean_nats = float(nats.mean())
    mean_bits = float(bits_per_dim_from_nats(mean_nats, splits.image_shape))
    headline = (f"{mean_nats:.2f} nats per image ({mean_bits:.4f} bits/dim)" if splits.num_levels == 2
                else f"{mean_bits:.4f} bits/dim ({mean_nats:.1f} nats per image)")
    given = " given their labels" if splits.num_classes and splits.paired else ""
    print_fn(f"test NLL on {len(nats)} {splits.name} test images{given}: {headline}")
    if factor:
        small_bits = float(bits_per_dim_from_nats(np.concatenate(small_nats).mean(), splits.image_shape))
        print_fn(f"  stages, bits/dim of the whole image: small image ({factor}x subsampled) {small_bits:.4f} "
                 f"+ the rest given it {mean_bits - small_bits:.4f}")
    return mean_nats, mean_bits, len(nats)


def classifier_accuracy(model, splits, batch_size=256, print_fn=print):
    """A class-conditional model as a classifier: the share of test images whose own label has the
    highest log p(image | label) (ties count as wrong). Returns (accuracy, number of images)."""
    import numpy as np

    from pixel_keras.inspection import num_classes_of

    num_classes = num_classes_of(model)
    score = _nll_nats(model)
    correct = []
    for images, labels in _test_batches(splits, batch_size):
        nats = np.stack([score(images, np.full_like(labels, k)) for k in range(num_classes)], axis=1)
        own = np.take_along_axis(nats, labels[:, None].astype(np.int64), axis=1)[:, 0]
        correct.append((nats.argmin(axis=1) == labels) & ((nats == own[:, None]).sum(axis=1) == 1))
    correct = np.concatenate(correct)
    accuracy = float(correct.mean())
    print_fn(f"classifier accuracy (argmax over the {num_classes} labels of log p(image | label)) on "
             f"{len(correct)} {splits.name} test images: {accuracy:.4f} (chance {1 / num_classes:.4f})")
    return accuracy, len(correct)


def report(run_dir, gallery_png, tensorboard=True):
    print(f"sample gallery: {gallery_png}")
    print(f"learning curves: {run_dir / 'metrics.jsonl'} (one JSON line per epoch)")
    if tensorboard:
        print(f"TensorBoard: tensorboard --logdir {run_dir / 'logs'}")


def check_run_directory(run_dir):
    """`run_dir` as a Path, once it holds run.json and best.keras; else a RunError saying which."""
    run_dir = pathlib.Path(run_dir)
    if not (run_dir / "run.json").exists():
        raise RunError(f"{run_dir} is not a run directory (no run.json)")
    if not (run_dir / "best.keras").exists():
        raise RunError(f"{run_dir} has no best.keras yet: train at least one epoch first")
    return run_dir


def load_run(run_dir):
    """(model, splits) of a run directory or `pretrained:NAME`: its best model and the dataset it
    was trained on."""
    from pixel_keras.data import load_dataset, with_labels
    from pixel_keras.io import load_model_file

    if not is_pretrained_reference(run_dir):
        run_dir = check_run_directory(run_dir)
    model, config = load_model_file(run_dir)
    splits = load_dataset(config["dataset"], config["data_dir"], config["image_size"], config["channels"],
                          config["seed"], config.get("levels"))
    return model, with_labels(splits) if config.get("conditional") else splits


def main(argv=None):
    parser = argparse.ArgumentParser(prog=program_name("training.evaluate"), description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True,
                        help="directory written by python -m training.run, or pretrained:NAME (a shipped model)")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="test images per forward pass")
    parser.add_argument("--no-classify", dest="classify", action="store_false",
                        help="class-conditional runs: skip the classifier accuracy (a test pass per class)")
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    if not is_pretrained_reference(args.run_dir):  # a shipped model's name is checked as it loads (no TensorFlow)
        check_run_directory(args.run_dir)
    model_file_path(args.run_dir)
    turn_off_the_failing_remapper()
    model, splits = load_run(args.run_dir)
    evaluate_model(model, splits, args.batch_size)
    if args.classify and splits.paired:
        classifier_accuracy(model, splits, args.batch_size)


if __name__ == "__main__":
    run_cli(main)
