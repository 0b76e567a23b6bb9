"""The GPU figures of issue 17 in one process: training images/s per arch, sampling time, GPU-minute bits/dim.

    KERAS_BACKEND=jax python -m benchmarks.gpu_report --seconds 540 --out DIR        # on the GPU machine
    KERAS_BACKEND=jax python -m benchmarks.gpu_report --quick --out /tmp/gpu_quick   # a CPU rehearsal
    KERAS_BACKEND=jax python -m benchmarks.gpu_report --archs pixelcnn pixelsnail --only throughput budget \
        --out DIR                                                                      # issue 28's GPU row

Measures, at the paper's size (12 x 128; `--layers`, `--hidden`), every arch of the paper (or those
`--archs` names, any registered arch):
- training images/s at 28 x 28 x 1 and 32 x 32 x 3 (256 levels), batch 16 and 64, float32 and
  Keras' `mixed_bfloat16` policy (one fixed random batch; the first step, tracing and compiling, timed
  apart; then steps for at least `--rate-seconds`);
- seconds to draw 16 images of 28 x 28 x 1, plain and fast loop (after one compiled warm-up draw);
- test bits/dim on all 10,000 Fashion-MNIST test images after `--train-minutes` of training at batch
  64 (compiling and validation included; best-validation weights, as `benchmarks.nll_budget`).

Everything runs in this one process (a lent GPU is held for minutes: a fresh process per figure
would import and initialise the device every time). Items run in order of importance; an item that
would end past `--seconds` is skipped and listed as such. Each result is printed as it comes and
appended as one JSON line to OUT/gpu_report.jsonl. Needs no TensorFlow (numpy input).
"""

import argparse
import gc
import json
import os
import time

import numpy as np

from benchmarks import worker
from benchmarks.contenders import make_contender
from benchmarks.header import print_header
from pixel_keras.cli import number_range, positive_int, run_cli

ARCHS = ("pixelcnn", "row_lstm", "diagonal_bilstm")
SMALL, COLOUR = (28, 28, 1), (32, 32, 3)
BF16 = "mixed_bfloat16"


def plan(train_minutes, archs=ARCHS):
    """The items, most important first: (kind, arch, settings)."""
    items = []

    def throughput(shape, batch, precision):
        items.extend(("throughput", arch, {"shape": shape, "batch": batch, "precision": precision}) for arch in archs)

    throughput(SMALL, 16, "float32")
    throughput(SMALL, 64, "float32")
    throughput(SMALL, 64, BF16)
    items.extend(("budget", arch, {"minutes": train_minutes, "precision": "float32"}) for arch in archs)
    items.extend(("sample", arch, {"method": method}) for arch in archs for method in ("plain", "fast"))
    throughput(COLOUR, 64, "float32")
    throughput(COLOUR, 64, BF16)
    throughput(COLOUR, 16, "float32")
    throughput(SMALL, 16, BF16)
    throughput(COLOUR, 16, BF16)
    if "pixelcnn" in archs:
        items.append(("budget", "pixelcnn", {"minutes": train_minutes, "precision": BF16}))
    return items


def cost_estimate(kind, settings):
    """Seconds an item is expected to take (compiling included), for the deadline."""
    return {"throughput": 15.0, "sample": 40.0}.get(kind, settings.get("minutes", 0.0) * 60.0 + 40.0)


def spec(arch, size, precision="float32"):
    layers, hidden = size
    return f"{arch}:layers={layers},hidden={hidden},precision={precision}"


def run_item(kind, arch, settings, args, data):
    size = (args.layers, args.hidden)
    if kind == "throughput":
        shape = settings["shape"]
        contender = make_contender(spec(arch, size, settings["precision"]), shape, 256)
        result = worker.throughput(contender, shape, 256, settings["batch"], steps=5, min_seconds=args.rate_seconds)
    elif kind == "sample":
        contender = make_contender(spec(arch, size), SMALL, 256)
        start = time.perf_counter()
        result = worker.sample(contender, args.sample_images, method=settings["method"])
        result["warm_up_and_draw_seconds"] = time.perf_counter() - start
    else:
        contender = make_contender(spec(arch, size, settings["precision"]), data["shape"], 256)
        result = worker.budget(contender, data, settings["minutes"], args.train_batch, args.steps_per_epoch)
        from pixel_keras.losses import bits_per_dim_from_nats

        result["test_bits_per_dim"] = float(bits_per_dim_from_nats(result["test_nats"], data["shape"]))
    result["params"] = contender.params()
    return result


def describe(kind, arch, settings):
    if kind == "throughput":
        shape = " x ".join(map(str, settings["shape"]))
        return f"train {arch:<16} {shape:<11} batch {settings['batch']:<3} {settings['precision']}"
    if kind == "sample":
        return f"sample {arch:<15} {settings['method']}"
    return f"budget {arch:<15} {settings['minutes']:g} min, {settings['precision']}"


def summary(kind, result):
    if kind == "throughput":
        return (f"{result['images_per_second']:9.1f} images/s  (first step {result['first_step_seconds']:.1f} s, "
                f"{result['steps']} timed steps)")
    if kind == "sample":
        return f"{result['seconds']:9.2f} s for the draw  (warm-up and draw {result['warm_up_and_draw_seconds']:.1f} s)"
    return (f"{result['test_bits_per_dim']:9.4f} bits/dim on {result['test_images']} test images  "
            f"({result['steps']} steps, {result['images_per_second']:.0f} images/s)")


def load_fashion(test_images):
    from benchmarks.nll_budget import as_arrays

    arrays, image_shape, _ = as_arrays("fashion_mnist", 500, test_images)
    return {**arrays, "shape": tuple(image_shape)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=number_range(0, low_open=True), default=480.0,
                        help="deadline for the whole report")
    from pixel_keras.archs import arch_names

    parser.add_argument("--archs", nargs="+", choices=arch_names(), default=list(ARCHS), metavar="ARCH",
                        help=f"the archs measured, each at --layers x --hidden (default: the paper's; any of "
                             f"{', '.join(arch_names())})")
    parser.add_argument("--layers", type=positive_int, default=12)
    parser.add_argument("--hidden", type=positive_int, default=128)
    parser.add_argument("--train-minutes", type=number_range(0, low_open=True), default=1.0,
                        help="GPU-minutes of training per arch")
    parser.add_argument("--train-batch", type=positive_int, default=64)
    parser.add_argument("--steps-per-epoch", type=positive_int, default=500, help="training steps between validations")
    parser.add_argument("--test-images", type=positive_int, default=10000)
    parser.add_argument("--sample-images", type=positive_int, default=16)
    parser.add_argument("--rate-seconds", type=number_range(0, low_open=True), default=1.5,
                        help="least timed seconds per images/s figure")
    parser.add_argument("--only", nargs="+", default=None, help="run only these item kinds (throughput, sample, budget)")
    parser.add_argument("--quick", action="store_true",
                        help="a rehearsal: 2 x 8 models, 3-second budgets, 200 test images")
    parser.add_argument("--out", default=".", help="folder for gpu_report.jsonl")
    args = parser.parse_args(argv)
    import keras

    if args.quick:
        args.layers, args.hidden, args.train_minutes, args.test_images = 2, 8, 0.05, 200
        args.rate_seconds, args.steps_per_epoch = 0.2, 20
    begin = time.perf_counter()
    print_header("benchmarks.gpu_report", argv, f"{args.layers} x {args.hidden}, deadline {args.seconds:g} s")
    items = [item for item in plan(args.train_minutes, tuple(args.archs)) if args.only is None or item[0] in args.only]
    data = load_fashion(args.test_images) if any(kind == "budget" for kind, _, _ in items) else None
    os.makedirs(args.out, exist_ok=True)
    skipped = []
    with open(os.path.join(args.out, "gpu_report.jsonl"), "a") as log:
        for kind, arch, settings in items:
            label = describe(kind, arch, settings)
            elapsed = time.perf_counter() - begin
            if elapsed + cost_estimate(kind, settings) > args.seconds:
                skipped.append(label)
                continue
            start = time.perf_counter()
            try:
                result = run_item(kind, arch, settings, args, data)
                line = summary(kind, result)
            except Exception as error:  # one failing item must not lose the others' figures
                result, line = {"error": f"{type(error).__name__}: {error}"[:500]}, f"FAILED {type(error).__name__}: {error}"[:300]
            finally:
                keras.mixed_precision.set_global_policy("float32")
                keras.backend.clear_session()
                gc.collect()
            result.update(kind=kind, arch=arch, item_seconds=time.perf_counter() - start,
                          **{key: list(value) if isinstance(value, tuple) else value for key, value in settings.items()})
            log.write(json.dumps(result) + "\n")
            log.flush()
            print(f"{label:<58} {line}  [{time.perf_counter() - begin:.0f} s]", flush=True)
    if skipped:
        print(f"skipped (deadline {args.seconds:g} s): " + "; ".join(skipped))


if __name__ == "__main__":
    run_cli(main)
