"""Training throughput (images/s), parameters and peak memory per contender, 256 levels, 28 x 28 x 1 by default.

    python -m benchmarks.train_throughput                       # the default table below
    python -m benchmarks.train_throughput --contenders row_lstm:layers=2,hidden=32,jit=1 --steps 10
    KERAS_BACKEND=jax python -m benchmarks.train_throughput --size 32 --channels 3 --batch 64 \
        --contenders pixelcnn:layers=12,hidden=128 row_lstm:layers=12,hidden=128

Runs under any Keras backend (`KERAS_BACKEND`), with no TensorFlow installed on other backends (the
`tfp` peer, which needs it, is then left out of the default table).

Each contender runs in a fresh process: one warm-up step (tracing, compiling), then `--steps` steps
on one fixed random batch. Default contenders: our archs at the paper's size (12 x 128) and at a small
size (2 x 32) with XLA off and on, and our PixelCNN next to TFP's PixelCNN++ at matched parameter
counts (TFP's example configuration, 0.63 M, and num_resnet=2, num_filters=64, 4.3 M).
"""

import argparse

from benchmarks.contenders import run_in_process
from benchmarks.header import print_header, runnable
from pixel_keras.cli import positive_int, run_cli

DEFAULT_CONTENDERS = (
    "pixelcnn:layers=12,hidden=128", "row_lstm:layers=12,hidden=128", "diagonal_bilstm:layers=12,hidden=128",
    "row_lstm:layers=12,hidden=128,jit=1", "diagonal_bilstm:layers=12,hidden=128,jit=1",
    "pixelcnn:layers=2,hidden=32", "row_lstm:layers=2,hidden=32", "diagonal_bilstm:layers=2,hidden=32",
    "pixelcnn:layers=2,hidden=32,jit=1", "row_lstm:layers=2,hidden=32,jit=1",
    "diagonal_bilstm:layers=2,hidden=32,jit=1",
    "spatial_lstm:layers=12,hidden=128", "spatial_lstm:layers=2,hidden=32", "spatial_lstm:layers=2,hidden=32,jit=1",
    "gated_pixelcnn:layers=12,hidden=128", "gated_pixelcnn:layers=2,hidden=32", "gated_pixelcnn:layers=5,hidden=32",
    "pixelcnn:layers=12,hidden=64", "tfp",
    "pixelcnn:layers=12,hidden=160", "tfp:num_resnet=2,num_filters=64",
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contenders", nargs="+", default=list(DEFAULT_CONTENDERS),
                        help="specs: see benchmarks/contenders.py")
    parser.add_argument("--batch", type=positive_int, default=16)
    parser.add_argument("--steps", type=positive_int, default=5)
    parser.add_argument("--size", type=positive_int, default=28, help="image height and width")
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    args = parser.parse_args(argv)
    image_shape = (args.size, args.size, args.channels)
    print_header("benchmarks.train_throughput", argv,
                 f"{args.size} x {args.size} x {args.channels}, batch {args.batch}, {args.steps} timed steps "
                 "(jit=1: XLA)")
    print(f"{'contender':<40} {'params':>10} {'images/s':>9} {'ms/image':>9} {'peak MB':>8}")
    for spec in runnable(args.contenders, DEFAULT_CONTENDERS):
        result = run_in_process("throughput", contender=spec, image_shape=image_shape, num_levels=256,
                                batch=args.batch, steps=args.steps)
        rate = result["images_per_second"]
        print(f"{spec:<40} {result['params']:>10,} {rate:>9.1f} {1000 / rate:>9.1f} {result['peak_memory_mb']:>8.0f}",
              flush=True)


if __name__ == "__main__":
    run_cli(main)
