"""Log-likelihood throughput through the exported SavedModel against the Keras model, one process.

    python -m benchmarks.serving [--batch 64] [--repeats 5] [--archs pixelcnn row_lstm diagonal_bilstm]

Per arch (CPU training sizes, random weights: speed does not depend on them, 28 x 28 x 1, 256
levels): images/s of `pk.log_prob` (the library call, eager), of the same computation in a
`tf.function` for any batch size (Keras at its best for serving), and of the `log_likelihood`
signature of the SavedModel written by `export.saved_model` and loaded with `tf.saved_model.load`
(what Serving runs, with its request checks). Median of --repeats timed calls after a warm-up; the last column is the SavedModel's rate
over the faster Keras rate (the target is >= 0.90).
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.header import print_header  # noqa: E402
from pixel_keras.cli import positive_int, run_cli  # noqa: E402
from pixel_keras.cpu_defaults import CPU_SIZES  # noqa: E402
from pixel_keras.archs import arch_names  # noqa: E402
from pixel_keras.archs import BUILTIN_NAMES as ARCHS  # noqa: E402


def rate(function, images, repeats):
    """Median images/s of `function(images)` over `repeats` calls after one warm-up call."""
    function(images)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(images)
        seconds.append(time.perf_counter() - start)
    return len(images) / statistics.median(seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=list(ARCHS), choices=arch_names())
    parser.add_argument("--batch", type=positive_int, default=64)
    parser.add_argument("--repeats", type=positive_int, default=5)
    args = parser.parse_args(argv)
    import tensorflow as tf  # not for --help

    import pixel_keras as pk
    from export.saved_model import export_saved_model
    from pixel_keras.losses import log_prob_from_logits

    print_header("benchmarks.serving", argv, f"batch {args.batch}, median of {args.repeats}")
    print(f"{'arch':<16} {'params':>8} {'Keras eager':>12} {'Keras tf.function':>18} {'SavedModel':>11} {'ratio':>6}")
    images = np.random.default_rng(0).integers(0, 256, (args.batch, 28, 28, 1)).astype(np.int32)
    for arch in args.archs:
        layers, hidden = CPU_SIZES[arch]
        model = pk.build_model(arch, (28, 28, 1), 256, num_layers=layers, hidden=hidden)
        # Any batch size, as a server needs (the SavedModel's batch axis is open too).
        compiled = tf.function(lambda x: log_prob_from_logits(model(x, training=False), x),
                               input_signature=[tf.TensorSpec((None, 28, 28, 1), tf.int32)])
        with tempfile.TemporaryDirectory() as export_dir:
            export_saved_model(model, export_dir, max_score_images=max(1024, args.batch))
            signature = tf.saved_model.load(export_dir).signatures["log_likelihood"]
            served = rate(lambda x: signature(images=tf.constant(x))["log_prob"].numpy(), images, args.repeats)
        eager = rate(lambda x: pk.log_prob(model, x), images, args.repeats)
        graph = rate(lambda x: compiled(tf.constant(x)).numpy(), images, args.repeats)
        print(f"{arch:<16} {model.count_params():>8,} {eager:>12.1f} {graph:>18.1f} {served:>11.1f} "
              f"{served / max(eager, graph):>6.2f}", flush=True)


if __name__ == "__main__":
    run_cli(main)
