"""Milliseconds per training step of the output heads, side by side in one process: the categorical
head, the logistic mixture head through the full model (every level's probability), and the mixture
head through `pixel_keras.fitting.training_view` (the observed level only), XLA off and on.

    python -m benchmarks.head_step_time [--repeats 2] [--steps 5]

CPU-default PixelCNN (5 x 32), 28 x 28 x 1, 256 levels, batch 16 of random images,
`train_on_batch` timed over --steps steps after 2 warm-up steps.
"""

import argparse
import time

import numpy as np

from benchmarks.header import print_header
from pixel_keras.cli import positive_int, run_cli

VARIANTS = (("categorical", "categorical", True), ("mixture, full head", "logistic_mixture", False),
            ("mixture, training view", "logistic_mixture", True))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive_int, default=2)
    parser.add_argument("--steps", type=positive_int, default=5)
    args = parser.parse_args(argv)
    from benchmarks.ours import OurModel  # Keras: not for --help

    print_header("benchmarks.head_step_time", argv, "pixelcnn 5 x 32, 28 x 28 x 1, 256 levels, batch 16")
    images = np.random.default_rng(0).integers(0, 256, (16, 28, 28, 1)).astype(np.int32)
    for repeat in range(args.repeats):
        for jit in (0, 1):
            for name, head, view in VARIANTS:
                contender = OurModel("pixelcnn", (28, 28, 1), 256, head=head, jit=jit)
                net = contender.fit_model if view else contender.model
                for _ in range(2):
                    net.train_on_batch(images, images)
                start = time.perf_counter()
                for _ in range(args.steps):
                    net.train_on_batch(images, images)
                ms = (time.perf_counter() - start) / args.steps * 1000
                print(f"repeat {repeat} xla={'on' if jit else 'off'} {name:<24} {ms:8.1f} ms/step", flush=True)


if __name__ == "__main__":
    run_cli(main)
