"""Training throughput (images/s) and parameter counts of each arch on 28 x 28 x 1 images.

Usage: python -m benchmarks.train_throughput [--layers 12] [--hidden 128] [--batch 16] [--steps 20] [--jit-compile]
Defaults are the paper's sizes (what `build_model` builds with no size arguments).
"""

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import pixel_keras as pk  # noqa: E402


def measure(arch, layers, hidden, batch, steps, jit_compile, image_shape=(28, 28, 1), num_levels=256):
    """(parameters, images/s) of `steps` RMSProp steps on one fixed batch, after one warm-up step."""
    keras.utils.set_random_seed(0)
    model = pk.build_model(arch, image_shape, num_levels, num_layers=layers, hidden=hidden)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-4), loss=pk.NegativeLogLikelihood(),
                  jit_compile=jit_compile)
    images = np.random.default_rng(0).integers(0, num_levels, (batch,) + image_shape).astype(np.int32)
    model.train_on_batch(images, images)  # trace and compile
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, images)
    elapsed = time.perf_counter() - start
    return model.count_params(), batch * steps / elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=list(pk.ARCHS), choices=pk.ARCHS)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--jit-compile", action="store_true", help="compile the training step with XLA")
    args = parser.parse_args(argv)
    print(f"command: python -m benchmarks.train_throughput {' '.join(sys.argv[1:])}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, TensorFlow {tf.__version__}, "
          f"devices {[d.device_type for d in tf.config.list_logical_devices()]}, "
          f"XLA {'on' if args.jit_compile else 'off'}")
    print(f"{'arch':<16} {'layers':>6} {'h':>4} {'params':>10} {'images/s':>9}")
    for arch in args.archs:
        params, rate = measure(arch, args.layers, args.hidden, args.batch, args.steps, args.jit_compile)
        print(f"{arch:<16} {args.layers:>6} {args.hidden:>4} {params:>10,} {rate:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
