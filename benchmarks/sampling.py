"""Sampling speed of the compiled sampling loop: seconds and images/s for 16 images per arch.

Usage: python -m benchmarks.sampling [--num 16] [--size 28] [--archs ...] [--jit-compile]
Models have random weights (speed does not depend on them) and the CPU training sizes of
`python -m training.run` unless --layers / --hidden are given. This is the baseline that fast
(cached) sampling is measured against.
"""

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

import pixel_keras as pk  # noqa: E402
from training.run import CPU_SIZES  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=list(pk.ARCHS), choices=pk.ARCHS)
    parser.add_argument("--num", type=int, default=16)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--levels", type=int, default=256)
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--hidden", type=int, default=None)
    parser.add_argument("--jit-compile", action="store_true", help="compile the loop with XLA")
    args = parser.parse_args(argv)
    print(f"command: python -m benchmarks.sampling {' '.join(sys.argv[1:])}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, TensorFlow {tf.__version__}, "
          f"XLA {'on' if args.jit_compile else 'off'}")
    print(f"{'arch':<16} {'layers':>6} {'h':>4} {'params':>9} {'images':>6} {'seconds':>8} {'images/s':>9}")
    for arch in args.archs:
        layers = args.layers or CPU_SIZES[arch][0]
        hidden = args.hidden or CPU_SIZES[arch][1]
        model = pk.build_model(arch, (args.size, args.size, 1), args.levels, num_layers=layers, hidden=hidden)
        sampler = pk.Sampler(model, jit_compile=args.jit_compile)
        sampler.sample(1, seed=0)  # trace (and compile) once
        start = time.perf_counter()
        sampler.sample(args.num, seed=1)
        seconds = time.perf_counter() - start
        print(f"{arch:<16} {layers:>6} {hidden:>4} {model.count_params():>9,} {args.num:>6} {seconds:>8.1f} "
              f"{args.num / seconds:>9.3f}", flush=True)


if __name__ == "__main__":
    main()
