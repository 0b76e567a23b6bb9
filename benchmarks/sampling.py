"""Sampling speed: seconds for 16 images of 28 x 28 x 1 (256 levels) per contender.

    python -m benchmarks.sampling [--num 16] [--contenders pixelcnn row_lstm diagonal_bilstm tfp]

Each contender runs in a fresh process with random weights (speed does not depend on them): one
traced warm-up draw of one image, then `--num` images timed. Ours is the compiled `tf.while_loop`
of `pixel_keras.Sampler` (CPU training sizes unless given); the peer is TFP's PixelCNN++ `sample()`
in a `tf.function`. This is also the baseline that fast (cached) sampling is measured against.
"""

import argparse

from benchmarks.contenders import PEER, run_in_process
from benchmarks.header import print_header


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contenders", nargs="+", default=["pixelcnn", "row_lstm", "diagonal_bilstm", PEER],
                        help="specs: see benchmarks/contenders.py")
    parser.add_argument("--num", type=int, default=16)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--levels", type=int, default=256)
    args = parser.parse_args(argv)
    print_header("benchmarks.sampling", argv,
                 f"{args.num} images of {args.size} x {args.size} x 1, {args.levels} levels")
    print(f"{'contender':<40} {'params':>9} {'seconds':>8} {'images/s':>9} {'peak MB':>8}")
    for spec in args.contenders:
        result = run_in_process("sample", contender=spec, image_shape=(args.size, args.size, 1),
                                num_levels=args.levels, num=args.num)
        print(f"{spec:<40} {result['params']:>9,} {result['seconds']:>8.1f} {args.num / result['seconds']:>9.3f} "
              f"{result['peak_memory_mb']:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
