"""Sampling speed: seconds for 16 images of 28 x 28 x 1 (256 levels), plain and fast loops side by side.

    python -m benchmarks.sampling [--num 16] [--contenders pixelcnn ... gated_pixelcnn tfp]
                                  [--methods plain fast] [--size 28] [--channels 1]

Each contender and method runs in a fresh process with random weights (speed does not depend on
them): one traced warm-up draw (of one image; of `--num` under JAX, which compiles per batch size),
then `--num` images timed. Ours is `pixel_keras.Sampler` (CPU training sizes unless given, e.g.
`pixelcnn:layers=12,hidden=128`):
`plain` runs the whole network at every step, `fast` the incremental (cached) step. The peer is
TFP's PixelCNN++ `sample()` in a `tf.function` (one row; it has no methods).

Runs under any Keras backend (`KERAS_BACKEND`), with no TensorFlow installed on other backends (the
`tfp` peer, which needs it, is then left out of the default contenders):

    KERAS_BACKEND=jax python -m benchmarks.sampling --contenders pixelcnn:layers=12,hidden=128 \
        row_lstm:layers=12,hidden=128 diagonal_bilstm:layers=12,hidden=128
"""

import argparse

from benchmarks.contenders import PEER, parse_spec, run_in_process
from benchmarks.header import print_header, runnable
from pixel_keras.cli import int_range, positive_int, run_cli

METHODS = ("plain", "fast")
DEFAULT_CONTENDERS = ("pixelcnn", "row_lstm", "diagonal_bilstm", "spatial_lstm", "gated_pixelcnn", PEER)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contenders", nargs="+", default=list(DEFAULT_CONTENDERS),
                        help="specs: see benchmarks/contenders.py")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--num", type=positive_int, default=16)
    parser.add_argument("--size", type=positive_int, default=28)
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    parser.add_argument("--levels", type=int_range(2, 256), default=256)
    args = parser.parse_args(argv)
    image_shape = (args.size, args.size, args.channels)
    print_header("benchmarks.sampling", argv,
                 f"{args.num} images of {args.size} x {args.size} x {args.channels}, {args.levels} levels")
    print(f"{'contender':<40} {'method':>6} {'params':>9} {'seconds':>8} {'images/s':>9} {'peak MB':>8} "
          f"{'speed-up':>8}")
    for spec in runnable(args.contenders, DEFAULT_CONTENDERS):
        seconds = {}
        for method in (None,) if parse_spec(spec)[0] == PEER else args.methods:
            result = run_in_process("sample", contender=spec, image_shape=image_shape, num_levels=args.levels,
                                    num=args.num, **({} if method is None else {"method": method}))
            seconds[method] = result["seconds"]
            speedup = f"{seconds['plain'] / seconds['fast']:>7.1f}x" if method == "fast" and "plain" in seconds else ""
            print(f"{spec:<40} {method or '-':>6} {result['params']:>9,} {result['seconds']:>8.2f} "
                  f"{args.num / result['seconds']:>9.3f} {result['peak_memory_mb']:>8.0f} {speedup:>8}", flush=True)


if __name__ == "__main__":
    run_cli(main)
