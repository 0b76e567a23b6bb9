"""The training app's step against the library's bare step: images/s and CPU time, side by side.

    python -m benchmarks.app_step                               # PixelCNN 6 x 48, Fashion-MNIST, batch 16
    python -m benchmarks.app_step --arch row_lstm --steps 200 --repeats 2 --jit-compile on

Each measurement runs in a fresh process, the two kinds alternating (`--repeats` pairs), so that a
noisy machine slows both alike:
- `bare`: `benchmarks.worker`'s throughput step (`train_step` on one fixed batch, synchronised);
- `app`: `training.run.main` itself (the README's main command, data pipeline, callbacks,
  checkpoints every 100 steps, validation) for a first epoch of `--steps` steps, not timed (tracing,
  first checkpoint), then a second of `--steps`, timed from its first step to its validation.
Both time only training steps and read the process's user / system CPU time and context switches
(`getrusage`) over the same span. The app's figure includes what a user's run pays per step
(checkpoint writes, the learning-rate update, progress); validation and galleries are outside the
span (galleries are off).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from pixel_keras.cli import RunError, positive_int, run_cli


def _usage():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"wall": time.perf_counter(), "user": usage.ru_utime, "sys": usage.ru_stime,
            "switches": usage.ru_nvcsw + usage.ru_nivcsw}


def _span(start, end, images):
    spent = {key: end[key] - start[key] for key in start}
    return {"images_per_second": images / spent["wall"], "user_seconds": spent["user"], "sys_seconds": spent["sys"],
            "switches_per_step": None, "wall_seconds": spent["wall"]}


def measure_bare(arch, layers, hidden, batch, steps, jit):
    """The worker's throughput step for the app's model and batch, CPU time read around the timed steps."""
    from benchmarks.contenders import make_contender
    from benchmarks.worker import throughput

    contender = make_contender(f"{arch}:layers={layers},hidden={hidden},jit={int(jit)}", (28, 28, 1), 256)
    throughput(contender, (28, 28, 1), 256, batch, steps=3)  # trace, compile, settle
    start = _usage()
    done = throughput(contender, (28, 28, 1), 256, batch, steps=steps)["steps"]
    end = _usage()
    result = _span(start, end, done * batch)
    result["switches_per_step"] = (end["switches"] - start["switches"]) / done
    return result


def measure_app(arch, layers, hidden, batch, steps, jit, mirrored=False):
    """`training.run.main` for two epochs of `steps`; the second timed from its first step to its end.
    `mirrored`: under a one-replica MirroredStrategy, what the app built before issue 30."""
    import training.callbacks as callbacks

    if mirrored:
        import tensorflow as tf

        import training.distribution as distribution

        distribution.make_strategy = lambda devices=None: tf.distribute.MirroredStrategy(["/cpu:0"])

    marks = []

    class TimedSummary(callbacks.EpochSummary):
        def on_epoch_begin(self, epoch, logs=None):
            super().on_epoch_begin(epoch, logs)
            self._epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            if self._epoch == 1 and self._steps == 0:
                marks.append(_usage())

        def on_test_begin(self, logs=None):
            if self._epoch == 1 and len(marks) == 1:
                marks.append(_usage())
            super().on_test_begin(logs)

    callbacks.EpochSummary = TimedSummary
    import training.evaluate as evaluate

    evaluate.evaluate_model = lambda *args, **kwargs: None  # the test set is outside the timed span
    evaluate.report = lambda *args, **kwargs: None
    from training.run import main

    with tempfile.TemporaryDirectory() as run_dir:
        main(["--arch", arch, "--layers", str(layers), "--hidden", str(hidden), "--batch-size", str(batch),
              "--steps", str(2 * steps), "--steps-per-epoch", str(steps), "--gallery-size", "0",
              "--validation-images", "16", "--max-minutes", "0", "--jit-compile", "on" if jit else "off",
              "--run-dir", run_dir])
    start, end = marks
    # the timed span covers steps 1 .. steps of the second epoch (its first step's begin to validation)
    result = _span(start, end, steps * batch)
    result["switches_per_step"] = (end["switches"] - start["switches"]) / steps
    return result


def child(request):
    request = json.loads(request)
    kind = request.pop("kind")
    if kind == "app (mirrored)":
        request["mirrored"] = True
    result = (measure_bare if kind == "bare" else measure_app)(**request)
    print("RESULT " + json.dumps(result), flush=True)


def run_child(kind, **arguments):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    done = subprocess.run([sys.executable, "-m", "benchmarks.app_step", "--child",
                           json.dumps({"kind": kind, **arguments})],
                          capture_output=True, text=True, env=environment)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RunError(f"the {kind} measurement failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}")
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.app_step", description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="pixelcnn")
    parser.add_argument("--layers", type=positive_int, default=6)
    parser.add_argument("--hidden", type=positive_int, default=48)
    parser.add_argument("--batch", type=positive_int, default=16)
    parser.add_argument("--steps", type=positive_int, default=300, help="timed steps per measurement")
    parser.add_argument("--repeats", type=positive_int, default=1, help="(bare, app) pairs, alternating")
    parser.add_argument("--jit-compile", choices=("on", "off"), default="off", help="XLA for both")
    parser.add_argument("--mirrored", action="store_true",
                        help="also time the app under a one-replica MirroredStrategy (what it built before issue 30)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child)
    from benchmarks.header import print_header

    print_header("benchmarks.app_step", argv,
                 f"{args.arch} {args.layers} x {args.hidden}, 28 x 28 x 1, batch {args.batch}, {args.steps} timed "
                 f"steps, XLA {args.jit_compile}")
    kinds = ("bare", "app") + (("app (mirrored)",) if args.mirrored else ())
    print(f"{'what':<15} {'images/s':>9} {'user s':>8} {'sys s':>7} {'sys/user':>9} {'switches/step':>14}", flush=True)
    rates = {kind: [] for kind in kinds}
    for _ in range(args.repeats):
        for kind in kinds:
            result = run_child(kind, arch=args.arch, layers=args.layers, hidden=args.hidden, batch=args.batch,
                               steps=args.steps, jit=args.jit_compile == "on")
            rates[kind].append(result["images_per_second"])
            print(f"{kind:<15} {result['images_per_second']:>9.1f} {result['user_seconds']:>8.1f} "
                  f"{result['sys_seconds']:>7.1f} {result['sys_seconds'] / max(result['user_seconds'], 1e-9):>9.1%} "
                  f"{result['switches_per_step']:>14.1f}", flush=True)
    for kind in kinds[1:]:
        ratios = [app / bare for app, bare in zip(rates[kind], rates["bare"])]
        print(f"{kind} / bare images/s: {' '.join(f'{ratio:.3f}' for ratio in ratios)}")


if __name__ == "__main__":
    run_cli(main)
