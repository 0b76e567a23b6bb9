"""Where a training step's time goes: TensorFlow's profiler around training steps, per op type.

    python -m benchmarks.profile_step --contenders pixelcnn:layers=12,hidden=64 tfp --steps 20

Each contender runs in a fresh process (`benchmarks.worker`'s `profile` task): warm-up steps
(tracing, compiling), then `--steps` `train_on_batch` steps on one fixed random batch under
`tf.profiler.experimental` (the trace TensorBoard's profiler shows). The trace's op events are summed
per op type (exclusive of nothing: an op's own kernel time, as the executor records it) and set
against the wall clock of the profiled steps; "outside ops" is wall clock minus the time the op
events cover on the busiest thread pool view (Python, dispatch and the executor's own overhead).
TensorFlow backend only (our models and the `tfp` peer are both TensorFlow there).
"""

import argparse

from benchmarks.contenders import run_in_process
from benchmarks.header import print_header
from pixel_keras.cli import positive_int, run_cli


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contenders", nargs="+", default=["pixelcnn:layers=12,hidden=64", "tfp"],
                        help="specs: see benchmarks/contenders.py")
    parser.add_argument("--batch", type=positive_int, default=16)
    parser.add_argument("--steps", type=positive_int, default=20)
    parser.add_argument("--size", type=positive_int, default=28, help="image height and width")
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    parser.add_argument("--top", type=positive_int, default=8, help="op types listed per contender")
    args = parser.parse_args(argv)
    image_shape = (args.size, args.size, args.channels)
    print_header("benchmarks.profile_step", argv,
                 f"{args.size} x {args.size} x {args.channels}, batch {args.batch}, {args.steps} profiled steps")
    for spec in args.contenders:
        result = run_in_process("profile", contender=spec, image_shape=image_shape, num_levels=256,
                                batch=args.batch, steps=args.steps)
        wall, ops = result["wall_ms_per_step"], result["op_ms_per_step"]
        covered = sum(ops.values())
        print(f"\n{spec}: {result['params']:,} parameters, {wall:.1f} ms per step (wall), op time summed over "
              f"threads {covered:.1f} ms per step ({result['op_events']} op events)")
        for name, ms in sorted(ops.items(), key=lambda item: -item[1])[:args.top]:
            print(f"    {name:<36} {ms:8.2f} ms/step  {100 * ms / covered:5.1f} %")
        print(f"    {'ops on the critical thread':<36} {result['busiest_thread_ms_per_step']:8.2f} ms/step; "
              f"wall not covered by any op: {result['idle_ms_per_step']:.2f} ms/step", flush=True)


if __name__ == "__main__":
    run_cli(main)
