"""Train, validate, checkpoint and evaluate a PixelCNN / PixelRNN.

    python -m training.run --arch pixelcnn            # Fashion-MNIST, CPU-sized model, < 30 min
    python -m training.run --arch row_lstm --dataset cifar10 --layers 12 --hidden 128 --max-minutes 0

Re-running the same command resumes from the run directory's latest checkpoint.
"""

import argparse
import json
import math
import os
import pathlib
import sys

from training.cli import RunError, run_cli

# Model sizes that train usefully on a 2-core CPU within the default time budget (the paper's sizes,
# 12 layers of h = 128, are `--layers 12 --hidden 128`).
CPU_SIZES = {"pixelcnn": (5, 32), "row_lstm": (3, 32), "diagonal_bilstm": (3, 32)}
# Default training minutes, so that a whole default run (with the final test evaluation and
# gallery, ~3x slower for the Diagonal BiLSTM) ends within 30 minutes on a 2-core CPU.
CPU_MINUTES = {"pixelcnn": 20.0, "row_lstm": 20.0, "diagonal_bilstm": 15.0}
CONFIG_KEYS = ("arch", "dataset", "data_dir", "image_size", "channels", "seed", "layers", "hidden", "residual",
               "skip", "batch_size", "learning_rate")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m training.run", description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--arch", required=True, help="pixelcnn, row_lstm or diagonal_bilstm")
    parser.add_argument("--dataset", default="fashion_mnist",
                        help="fashion_mnist, binarized_fashion_mnist, digits, folder:PATH, or a TFDS image "
                             "dataset name (mnist, cifar10, downsampled_imagenet/32x32, ...)")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory")
    parser.add_argument("--image-size", type=int, default=32, help="side of images made from folder:PATH")
    parser.add_argument("--channels", type=int, default=3, help="channels of images made from folder:PATH")
    parser.add_argument("--layers", type=int, default=None,
                        help="residual blocks / recurrent layers (default: a CPU size per arch, "
                             f"{CPU_SIZES})")
    parser.add_argument("--hidden", type=int, default=None, help="h; the residual stream has 2h features")
    parser.add_argument("--no-residual", dest="residual", action="store_false", help="drop residual connections")
    parser.add_argument("--skip", action="store_true", help="add skip connections from every layer to the head")
    parser.add_argument("--batch-size", type=int, default=16, help="global batch (split across replicas); paper: 16")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="RMSProp learning rate")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of --steps-per-epoch steps")
    parser.add_argument("--steps-per-epoch", type=int, default=1000,
                        help="steps between validations, checkpoints and galleries")
    parser.add_argument("--steps", type=int, default=None, help="total steps (overrides --epochs)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help=f"stop training after this many minutes of this invocation (0: no limit; "
                             f"default per arch: {CPU_MINUTES})")
    parser.add_argument("--validation-images", type=int, default=1000,
                        help="validation images scored after every epoch")
    parser.add_argument("--run-dir", default=None, help="checkpoints and TensorBoard logs (default runs/ARCH_DATASET)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, data order and binarization")
    parser.add_argument("--devices", type=int, default=None,
                        help="local replicas for MirroredStrategy (default: all GPUs, else 1 CPU; with no GPU, "
                             "N > 1 splits the CPU into N logical devices)")
    parser.add_argument("--checkpoint-every", type=int, default=100, help="steps between latest-state checkpoints")
    parser.add_argument("--gallery-every", type=int, default=1, help="epochs between galleries (0: none)")
    parser.add_argument("--gallery-size", type=int, default=8, help="samples (and completions) per gallery")
    parser.add_argument("--jit-compile", choices=("auto", "on", "off"), default="auto",
                        help="XLA; auto: on where a GPU is present")
    parser.add_argument("--eval-batch-size", type=int, default=256, help="batch for validation and test")
    args = parser.parse_args(argv)
    import pixel_keras

    if args.arch not in pixel_keras.ARCHS:
        raise RunError(f"unknown --arch {args.arch!r}; expected one of {', '.join(pixel_keras.ARCHS)}")
    for name in ("batch_size", "steps_per_epoch", "checkpoint_every", "validation_images", "eval_batch_size",
                 "epochs", "image_size"):
        if getattr(args, name) < 1:
            raise RunError(f"--{name.replace('_', '-')} must be >= 1; received {getattr(args, name)}")
    default_layers, default_hidden = CPU_SIZES[args.arch]
    args.layers = default_layers if args.layers is None else args.layers
    args.hidden = default_hidden if args.hidden is None else args.hidden
    args.max_minutes = CPU_MINUTES[args.arch] if args.max_minutes is None else args.max_minutes
    if args.run_dir is None:
        args.run_dir = os.path.join("runs", f"{args.arch}_{args.dataset.replace('/', '_').replace(':', '_')}")
    return args


def check_run_config(run_dir, args, write):
    """Refuse to resume a run directory with different settings; record the settings of a new one."""
    path = pathlib.Path(run_dir) / "run.json"
    config = {key: getattr(args, key) for key in CONFIG_KEYS}
    if path.exists():
        saved = json.loads(path.read_text())
        changed = [f"{key}: {saved.get(key)!r} -> {config[key]!r}" for key in CONFIG_KEYS if saved.get(key) != config[key]]
        if changed:
            raise RunError(f"{run_dir} holds a run with other settings ({'; '.join(changed)}); "
                           "use the same flags to resume, or a new --run-dir")
    elif write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2) + "\n")
    return config


def make_pipelines(splits, args, step, options):
    """(train, validation) tf.data pipelines of (images, images) int32 batches; `train` repeats in a
    seeded order and starts `step` batches in, so a resumed run sees the data it would have seen."""
    import tensorflow as tf

    def as_pairs(images):
        images = tf.cast(images, tf.int32)
        return images, images

    train = (splits.train.map(lambda x: tf.cast(x, tf.int32)).cache()
             .shuffle(min(splits.sizes["train"] or 60000, 60000), seed=args.seed, reshuffle_each_iteration=True)
             .repeat().batch(args.batch_size, drop_remainder=True).skip(step)
             .map(lambda x: (x, x)).prefetch(tf.data.AUTOTUNE).with_options(options))
    validation = (splits.validation.take(args.validation_images).batch(args.eval_batch_size).map(as_pairs)
                  .cache().prefetch(tf.data.AUTOTUNE).with_options(options))
    return train, validation


def main(argv=None):
    args = parse_args(argv)
    from training.distribution import is_chief, make_strategy

    strategy = make_strategy(args.devices)  # first: it may split the CPU into logical devices
    import keras
    import numpy as np
    import tensorflow as tf

    import pixel_keras as pk
    from pixel_keras.data import load_dataset
    from pixel_keras.xla import default_jit_compile
    from training.callbacks import EpochSummary, Gallery, TimeBudget
    from training.checkpoints import RunCheckpoints, SaveCheckpoints
    from training.evaluate import evaluate_model, report

    chief = is_chief(strategy)
    run_dir = pathlib.Path(args.run_dir)
    if not chief:  # other workers take part in every collective but write to their own folder
        run_dir = run_dir / f"worker-{strategy.cluster_resolver.task_id}"
    keras.utils.set_random_seed(args.seed)
    splits = load_dataset(args.dataset, args.data_dir, args.image_size, args.channels, args.seed)
    check_run_config(args.run_dir, args, write=chief)
    jit_compile = {"auto": default_jit_compile(), "on": True, "off": False}[args.jit_compile]

    with strategy.scope():
        model = pk.build_model(args.arch, splits.image_shape, splits.num_levels, num_layers=args.layers,
                               hidden=args.hidden, residual=args.residual, skip=args.skip)
        model.compile(
            optimizer=keras.optimizers.RMSprop(args.learning_rate),
            loss=pk.NegativeLogLikelihood(),
            jit_compile=jit_compile,
        )
        checkpoints = RunCheckpoints(model, run_dir)
        step = checkpoints.restore()

    total_steps = args.steps or args.epochs * args.steps_per_epoch
    steps_per_epoch = min(args.steps_per_epoch, total_steps)
    print(f"{args.arch} on {splits.name} {splits.image_shape} x {splits.num_levels} levels: "
          f"{model.count_params():,} parameters, {strategy.num_replicas_in_sync} replica(s), "
          f"{'resuming at step ' + str(step) if step else 'new run'} in {run_dir}", flush=True)

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train, validation = make_pipelines(splits, args, step, options)
    held_out = np.stack(list(splits.validation.take(args.gallery_size).as_numpy_iterator()))
    gallery = Gallery(held_out, splits.num_levels, run_dir / "logs", run_dir / "gallery",
                      every=args.gallery_every, seed=args.seed)
    budget = TimeBudget(args.max_minutes)
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        budget,
        SaveCheckpoints(checkpoints, args.checkpoint_every),
        EpochSummary(args.batch_size, splits.image_shape),
        gallery,
        keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=True),
    ]
    verbose = 1 if sys.stdout.isatty() else 2
    epoch, offset = divmod(step, steps_per_epoch)
    total_epochs = math.ceil(total_steps / steps_per_epoch)
    while step < total_steps and not budget.exhausted:
        # A resumed run first finishes its interrupted epoch, then runs whole ones.
        steps = min(steps_per_epoch - offset, total_steps - step)
        end_epoch = epoch + 1 if offset else total_epochs
        history = model.fit(train, steps_per_epoch=steps, epochs=end_epoch, initial_epoch=epoch,
                            validation_data=validation, callbacks=callbacks, verbose=verbose, shuffle=False)
        if not np.isfinite(history.history["loss"][-1]):
            raise RunError(f"loss became NaN; training stopped at step {checkpoints.step}. "
                           f"The last good checkpoint is kept in {checkpoints.directory}")
        step, epoch, offset = checkpoints.step, end_epoch, 0
        train, _ = make_pipelines(splits, args, step, options)
    if step >= total_steps:
        print(f"training finished: {step} steps")
    else:
        print(f"time budget of {args.max_minutes:g} minutes spent at step {step}; "
              "run the same command again to continue")
    if not chief:
        return
    evaluate_model(keras.models.load_model(checkpoints.best_path) if checkpoints.best_path.exists() else model,
                   splits, args.eval_batch_size, print_fn=print)
    report(run_dir, gallery.write(step, args.seed + 10_000))


if __name__ == "__main__":
    run_cli(main)
