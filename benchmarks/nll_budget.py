"""Test NLL after the same wall-clock training budget, ours against the TFP PixelCNN peer.

    python -m benchmarks.nll_budget --dataset digits --minutes 3
    python -m benchmarks.nll_budget --dataset fashion_mnist --minutes 10 --test-images 2000
    python -m benchmarks.nll_budget --dataset binarized_fashion_mnist --minutes 3 --test-images 2000
    KERAS_BACKEND=jax python -m benchmarks.nll_budget --dataset fashion_mnist --minutes 2.33 --batch 64 \
        --contenders pixelcnn:layers=12,hidden=128 row_lstm:layers=12,hidden=128    # no TensorFlow needed
    python -m benchmarks.nll_budget --dataset digits --minutes 2 --contenders \
        row_lstm:layers=12,hidden=16,residual=0 row_lstm:layers=12,hidden=16 \
        row_lstm:layers=12,hidden=16,residual=0,skip=1 row_lstm:layers=12,hidden=16,skip=1

Every contender trains in its own fresh process on the same training images, in the same shuffled
order, with the same batch size, for the same minutes (tracing, compiling and validation included);
after every epoch of --steps-per-epoch steps it is scored on the same validation images, and the
weights with the best validation NLL are scored on the same test images (model selection, as
`training.run` keeps best.keras: small data over-fits long before the budget ends). Also printed:
the uniform baseline and an independent-pixel baseline (a per-position histogram of the training
images, add-one smoothed). Peak resident memory is that of the whole training process.
"""

import argparse
import math

import numpy as np

from benchmarks.contenders import PEER, run_in_process
from benchmarks.header import print_header, runnable
from pixel_keras.cli import non_negative_int, number_range, positive_int, run_cli

DEFAULT_CONTENDERS = ("pixelcnn", "row_lstm", "diagonal_bilstm", "spatial_lstm", "gated_pixelcnn", PEER)


def as_arrays(dataset, validation_images, test_images):
    """{train, validation, test} uint8 arrays of a `pixel_keras.data` dataset, image shape, levels;
    in-memory datasets (Fashion-MNIST, digits, ...) are read with numpy alone (no TensorFlow)."""
    from pixel_keras.data import IN_MEMORY_DATASETS, load_arrays, load_dataset

    if dataset in IN_MEMORY_DATASETS:
        arrays, image_shape, num_levels = load_arrays(dataset)
        arrays = {"train": arrays["train"], "validation": arrays["validation"][:validation_images],
                  "test": arrays["test"][:test_images]}
        return arrays, image_shape, num_levels
    splits = load_dataset(dataset)
    arrays = {"train": np.stack(list(splits.train.as_numpy_iterator())),
              "validation": np.stack(list(splits.validation.take(validation_images).as_numpy_iterator())),
              "test": np.stack(list(splits.test.take(test_images).as_numpy_iterator()))}
    return arrays, splits.image_shape, splits.num_levels


def independent_pixel_nats(train, test, num_levels):
    """Mean test NLL (nats per image) of a per-position categorical fitted to the training images."""
    counts = np.stack([(train == level).sum(axis=0) for level in range(num_levels)]) + 1.0
    log_p = np.log(counts / counts.sum(axis=0))  # (levels, H, W, C)
    positions = np.indices(test.shape[1:])
    return float(-log_p[(test, *positions)].reshape(len(test), -1).sum(axis=1).mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", help="a `training.run --dataset` name")
    parser.add_argument("--minutes", type=number_range(0, low_open=True), default=3.0,
                        help="training wall clock per contender")
    parser.add_argument("--batch", type=positive_int, default=16)
    parser.add_argument("--steps-per-epoch", type=positive_int, default=500, help="training steps between validations")
    parser.add_argument("--validation-images", type=positive_int, default=500, help="first N validation images")
    parser.add_argument("--test-images", type=positive_int, default=10000, help="first N test images (all if fewer)")
    parser.add_argument("--sample-images", type=non_negative_int, default=0,
                        help="also time drawing N images with each trained contender (0: off)")
    parser.add_argument("--contenders", nargs="+", default=list(DEFAULT_CONTENDERS),
                        help="specs: see benchmarks/contenders.py")
    args = parser.parse_args(argv)
    arrays, image_shape, num_levels = as_arrays(args.dataset, args.validation_images, args.test_images)
    train, test = arrays["train"], arrays["test"]
    dims = int(np.prod(image_shape))
    print_header("benchmarks.nll_budget", argv,
                 f"{args.dataset} {image_shape} x {num_levels} levels, {len(train)} training, "
                 f"{len(arrays['validation'])} validation and {len(test)} test images, batch {args.batch}, "
                 f"validation every {args.steps_per_epoch} steps, {args.minutes:g} min per contender")
    print(f"{'contender':<46} {'params':>9} {'steps':>6} {'img/s':>6} {'bits/dim':>8} {'nats/img':>9} {'peak MB':>8}")

    from pixel_keras.losses import bits_per_dim_from_nats

    def row(name, nats, params="", steps="", rate="", memory=""):
        bits = bits_per_dim_from_nats(nats, image_shape)
        print(f"{name:<46} {params:>9} {steps:>6} {rate:>6} {bits:>8.4f} {nats:>9.2f} "
              f"{memory:>8}", flush=True)

    row("uniform", dims * math.log(num_levels))
    row("independent pixels", independent_pixel_nats(train, test, num_levels))
    for spec in runnable(args.contenders, DEFAULT_CONTENDERS):
        result = run_in_process("budget", contender=spec, image_shape=image_shape, num_levels=num_levels,
                                minutes=args.minutes, batch=args.batch, steps_per_epoch=args.steps_per_epoch,
                                sample_images=args.sample_images, **arrays)
        row(spec, result["test_nats"], f"{result['params']:,}", result["steps"],
            f"{result['images_per_second']:.1f}", f"{result['peak_memory_mb']:.0f}")
        if args.sample_images:
            print(f"{'':<46} sampling {args.sample_images} images: {result['sample_seconds']:.1f} s", flush=True)


if __name__ == "__main__":
    run_cli(main)
