"""Train, validate, checkpoint and evaluate a PixelCNN / PixelRNN.

    python -m training.run --arch pixelcnn            # Fashion-MNIST, CPU-sized model, < 30 min
    python -m training.run --arch row_lstm --dataset cifar10 --layers 12 --hidden 128 --max-minutes 0

Re-running the same command resumes from the run directory's latest checkpoint.
"""

import argparse
import contextlib
import json
import os
import pathlib
import sys

from pixel_keras.cli import (HelpFormatter, RunError, add_verbose_flag, check_directory, int_range, non_negative_int,
                             number_range, positive_int, program_name, run_cli, turn_off_the_failing_remapper)
from pixel_keras.cpu_defaults import CPU_MINUTES, CPU_SIZES
from pixel_keras.archs import arch_names, get_arch
from pixel_keras.head_registry import get_head, head_names
from pixel_keras.io import model_file_path
from pixel_keras.settings import DEFAULT_LEARNING_RATES, LR_SCHEDULES, OPTIMIZERS

CONFIG_KEYS = ("arch", "dataset", "data_dir", "image_size", "channels", "seed", "layers", "hidden", "residual",
               "skip", "batch_size", "learning_rate", "validation_images", "steps_per_epoch", "levels",
               "conditional", "head", "num_mixtures", "optimizer", "lr_schedule", "multiscale", "dropout",
               "max_minutes", "perturb_rate", "weight_decay")
# Settings recorded in run.json that a resume may change (a lower learning rate after a divergence;
# the budget of each invocation; how many validation images are scored, which changes no weight).
RESUMABLE_KEYS = ("learning_rate", "max_minutes", "validation_images")
# Settings an older run.json lacks, with the value the code that wrote it used: such a run resumes
# only with that value, since another would change the model or data under its checkpoint.
# validation_images and steps_per_epoch were flags before run.json recorded them: any value resumes.
LEGACY_VALUES = {"levels": None, "conditional": False, "head": "categorical", "num_mixtures": 5,
                 "optimizer": "rmsprop", "lr_schedule": "constant", "multiscale": None, "dropout": 0.0,
                 "perturb_rate": 0.0, "weight_decay": 0.0}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=program_name("training.run"), description=__doc__.splitlines()[0],
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--arch", required=True, help="; ".join(  # the registry: built-ins and registered archs
        f"{name} ({get_arch(name).description})" for name in arch_names()))
    parser.add_argument("--dataset", default="fashion_mnist",
                        help="fashion_mnist, binarized_fashion_mnist, mnist, stochastic_binarized_mnist, digits, "
                             "sample_photos, folder:PATH, or a TFDS image dataset name (binarized_mnist, cifar10, "
                             "downsampled_imagenet/32x32, ...)")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory")
    parser.add_argument("--image-size", type=positive_int, default=32, help="side of images made from folder:PATH")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=3,
                        help="channels of images made from folder:PATH")
    parser.add_argument("--levels", type=int_range(2, 256), default=None,
                        help="pixel levels of the data, 2 .. 256 (default: the dataset's own: 2 for binarized_mnist "
                             "and binarized_fashion_mnist, 17 for digits, else 256); data outside them is an "
                             "error, never requantised")
    parser.add_argument("--layers", type=positive_int, default=None,
                        help="residual blocks / recurrent layers (default: a CPU size per arch, "
                             f"{CPU_SIZES})")
    parser.add_argument("--hidden", type=positive_int, default=None,
                        help="h; the residual stream has 2h features (default: the CPU size, see --layers)")
    parser.add_argument("--no-residual", dest="residual", action="store_false",
                        help="drop residual connections (default: kept)")
    parser.add_argument("--skip", action="store_true", help="add skip connections from every layer to the head")
    parser.add_argument("--conditional", action="store_true",
                        help="class-conditional model p(image | label) on a dataset with labels (fashion_mnist, "
                             "digits, TFDS datasets with a 'label' feature, folder:PATH with one sub-folder per "
                             "class); galleries show one row of samples per class")
    parser.add_argument("--multiscale", type=int_range(2), default=None, metavar="F",
                        help="a Multi-Scale PixelRNN: a model of the image subsampled by F and one of the image "
                             "given it, trained as one model (the loss is the sum of the two NLLs)")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="global batch (split across replicas); paper: 16")
    parser.add_argument("--learning-rate", type=number_range(0, low_open=True), default=None,
                        help=f"(initial) learning rate; default: a resumed run's own, else per optimizer "
                             f"{DEFAULT_LEARNING_RATES} (a resume may change it, e.g. lower it after a NaN loss)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam",
                        help="adam (PixelCNN++; measured better per CPU-minute, BUILD_NOTES.md) or rmsprop (paper)")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="cosine",
                        help="cosine: decay to 0 at the run's end, the last of --steps (or --epochs x "
                             "--steps-per-epoch) or the end of --max-minutes, whichever comes first (the run is then "
                             "complete); constant: no decay (a run cut by --max-minutes continues when re-run)")
    parser.add_argument("--head", choices=head_names(), default="categorical",
                        help="output head: " + "; ".join(f"{name}: {get_head(name).description}" for name in head_names()))
    parser.add_argument("--num-mixtures", type=positive_int, default=5,
                        help="logistic components per channel (--head logistic_mixture)")
    parser.add_argument("--dropout", type=number_range(0, 1, high_open=True), default=0.0,
                        help="dropout rate on every block's output while training, in [0, 1) (0: none, the paper's)")
    parser.add_argument("--perturb-rate", type=number_range(0, 1, high_open=True), default=0.0, metavar="MU",
                        help="replace each training sub-pixel, with probability MU, by a uniform random level: "
                             "the background model of a likelihood ratio (Ren et al. 2019: 0.1-0.3); validation "
                             "and test images stay clean")
    parser.add_argument("--weight-decay", type=number_range(0), default=0.0, metavar="W",
                        help="the optimizer's decoupled weight decay (Keras' weight_decay; Ren et al. used an L2 "
                             "penalty on the weights)")
    parser.add_argument("--epochs", type=positive_int, default=20, help="epochs of --steps-per-epoch steps")
    parser.add_argument("--steps-per-epoch", type=positive_int, default=1000,
                        help="steps between validations, checkpoints and galleries")
    parser.add_argument("--steps", type=positive_int, default=None, help="total steps, exactly (overrides --epochs)")
    parser.add_argument("--max-minutes", type=number_range(0), default=None,
                        help=f"stop training after this many minutes of this invocation, where a cosine schedule "
                             f"ends (0: no limit; default per arch: {CPU_MINUTES})")
    parser.add_argument("--validation-images", type=positive_int, default=1000,
                        help="validation images scored after every epoch (a resume may change it)")
    parser.add_argument("--initial-model", default=None, metavar="MODEL",
                        help="a new run starts from this model's weights (a .keras file, a run directory or "
                             "pretrained:NAME of the same arch, sizes, levels and head), its optimizer fresh at "
                             "step 0; ignored when the run directory resumes")
    parser.add_argument("--initial-optimizer-state", action="store_true",
                        help="with --initial-model: also its optimizer's state and step count (a run's best.keras, "
                             "the shipped models; the same --optimizer), so the run continues from the step it was "
                             "saved at, with the data order from there")
    parser.add_argument("--run-dir", default=None, help="checkpoints and TensorBoard logs (default runs/ARCH_DATASET)")
    parser.add_argument("--seed", type=int_range(0, 2**32 - 1), default=0,
                        help="seed of weights, data order and binarization")
    parser.add_argument("--devices", type=positive_int, default=None,
                        help="local replicas for MirroredStrategy (default: all GPUs, else 1 CPU; with no GPU, "
                             "N > 1 splits the CPU into N logical devices)")
    parser.add_argument("--checkpoint-every", type=positive_int, default=100,
                        help="steps between latest-state checkpoints")
    parser.add_argument("--gallery-every", type=non_negative_int, default=1,
                        help="epochs between galleries (0: only the one at the end of the run)")
    parser.add_argument("--gallery-size", type=non_negative_int, default=8,
                        help="samples (and completions) per gallery (0: no galleries)")
    parser.add_argument("--jit-compile", choices=("auto", "on", "off"), default="auto",
                        help="XLA; auto: on TensorFlow where a GPU is present, on JAX always (Keras' auto)")
    parser.add_argument("--eval-batch-size", type=positive_int, default=256, help="batch for validation and test")
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    if args.arch not in arch_names():
        raise RunError(f"unknown --arch {args.arch!r}; expected one of {', '.join(arch_names())}")
    default_layers, default_hidden = CPU_SIZES[args.arch]
    args.layers = default_layers if args.layers is None else args.layers
    args.hidden = default_hidden if args.hidden is None else args.hidden
    args.max_minutes = CPU_MINUTES[args.arch] if args.max_minutes is None else args.max_minutes
    if args.initial_optimizer_state and not args.initial_model:
        raise RunError("--initial-optimizer-state needs --initial-model MODEL (whose optimizer state it takes)")
    if args.initial_model:  # before any data or Keras: a bad name or an unreadable file
        try:
            model_file_path(args.initial_model)
        except RunError as error:
            raise RunError(f"--initial-model: {error}") from None
    if args.run_dir is None:
        args.run_dir = os.path.join("runs", f"{args.arch}_{args.dataset.replace('/', '_').replace(':', '_')}")
    check_directory(args.run_dir, "--run-dir")  # before any data is loaded
    return args


def check_run_config(run_dir, args):
    """(settings to record, settings run.json holds or None): refuses to resume a run directory
    with other settings, except RESUMABLE_KEYS. A key that an older run.json lacks is compared with
    LEGACY_VALUES (what the older code used), or, for a flag the older code already had but did not
    record, takes the value given now. Fills in `args.learning_rate` when not given (the run's
    own on a resume, else the optimizer's default). Writes nothing (see `write_run_config`)."""
    path = pathlib.Path(run_dir) / "run.json"
    saved = read_run_config(path) if path.exists() else None
    if args.learning_rate is None:  # not given: the run's own rate, else the optimizer's default
        args.learning_rate = (saved or {}).get("learning_rate") or DEFAULT_LEARNING_RATES[args.optimizer]
    config = {key: getattr(args, key) for key in CONFIG_KEYS}
    if saved is None:
        return config, None
    if saved.get("lr_schedule") == "cosine" and "max_minutes" not in saved:
        # That cosine was a schedule object (no learning-rate variable): its checkpoints do not fit
        # today's optimizer, whose rate TrainingBudget sets.
        raise RunError(f"{run_dir} holds a run whose cosine schedule decayed over its steps only (pixel_keras "
                       "before the cosine that ends with the time budget); this version cannot resume it: start a "
                       "new --run-dir (its best.keras stays usable)")
    recorded = {**LEGACY_VALUES, **saved}
    differing = [key for key in CONFIG_KEYS
                 if key in recorded and key not in RESUMABLE_KEYS and recorded[key] != config[key]]
    if differing:
        changed = "; ".join(f"{key}: {recorded[key]!r} -> {config[key]!r}" for key in differing)
        # Defaults change between versions (optimizer, schedule): name the flags that resume the run.
        flags = " ".join(f"--{key.replace('_', '-')} {recorded[key]}" for key in differing
                         if isinstance(recorded[key], (str, int, float)) and not isinstance(recorded[key], bool))
        hint = f" (e.g. {flags})" if flags else ""
        raise RunError(f"{run_dir} holds a run with other settings ({changed}); "
                       f"use its settings to resume{hint}, or a new --run-dir")
    return config, saved


def read_run_config(path):
    """The settings of run.json at `path`; a RunError naming it where it is not strict JSON
    (NaN or Infinity included: an older version could write a NaN learning rate)."""
    def refuse(constant):
        raise ValueError(f"{constant} is not a JSON number")

    try:
        return json.loads(path.read_text(), parse_constant=refuse)
    except ValueError as error:  # json.JSONDecodeError too
        raise RunError(f"{path} is not valid JSON ({error}); fix or delete it, or use a new --run-dir") from None


def write_run_config(run_dir, config):
    """Record the settings once training can start (a failed start leaves the directory free);
    strict JSON (a NaN or infinity is refused, never written)."""
    path = pathlib.Path(run_dir) / "run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(config, indent=2, allow_nan=False) + "\n"
    partial = path.with_name(".run.json.partial")
    partial.write_text(text)
    os.replace(partial, path)


def current_learning_rate(optimizer):
    """The optimizer's learning rate now, as a float (restored with its state)."""
    import keras

    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def schedule_progress(optimizer, step, saved_config, schedule):
    """How far a resumed run is along its cosine schedule: read back from the rate it restored,
    which `TrainingBudget` set from the progress, relative to the initial rate the run recorded.
    0 for a constant rate and for a new run (no run.json yet): one started from --initial-model,
    even at a step where its source's schedule had ended, starts a schedule of its own."""
    if schedule != "cosine" or not step or saved_config is None:
        return 0.0
    from pixel_keras.fitting import cosine_progress

    restored = current_learning_rate(optimizer)
    initial = saved_config.get("learning_rate") or restored
    return cosine_progress(restored / initial) if initial else 1.0


def next_fit(step, total_steps, steps_per_epoch):
    """(initial_epoch, epochs, steps_per_epoch) of the next `fit` call from `step` towards exactly
    `total_steps`: the rest of an interrupted epoch, whole epochs, or a last partial epoch."""
    epoch, offset = divmod(step, steps_per_epoch)
    left = total_steps - step
    if offset or left < steps_per_epoch:
        return epoch, epoch + 1, min(steps_per_epoch - offset, left)
    return epoch, epoch + left // steps_per_epoch, steps_per_epoch


def make_pipelines(splits, args, step, options):
    """(train, validation) tf.data pipelines of (images, images) int32 batches (conditional splits of
    (image, label): ((images, labels), images)); `train` repeats in a
    seeded order and starts `step` batches in, so a resumed run sees the data it would have seen.
    Both cache the uint8 images (a quarter of int32's bytes) and cast each batch."""
    import tensorflow as tf

    from pixel_keras.perturbation import perturb

    def as_pairs(images, labels=None):
        images = tf.cast(images, tf.int32)
        return (images, images) if labels is None else ((images, labels), images)

    def perturbed(batch_step, images, labels=None):  # the numpy feed's perturbation, by (seed, step)
        images = tf.numpy_function(lambda values, at: perturb(values, args.perturb_rate, splits.num_levels, args.seed, at),
                                   [tf.cast(images, tf.int32), batch_step], tf.int32, stateful=False)
        images = tf.ensure_shape(images, [args.batch_size, *splits.image_shape])
        return as_pairs(images) if labels is None else as_pairs(images, labels)

    train = (splits.train.cache()
             .shuffle(min(splits.sizes["train"] or 60000, 60000), seed=args.seed, reshuffle_each_iteration=True)
             .repeat().batch(args.batch_size, drop_remainder=True).skip(step))
    if args.perturb_rate:
        train = train.enumerate(start=step).map(lambda at, batch: perturbed(at, *(batch if isinstance(batch, tuple) else (batch,))))
    else:
        train = train.map(as_pairs)
    train = train.prefetch(tf.data.AUTOTUNE).with_options(options)
    validation = (splits.validation.take(args.validation_images).cache().batch(args.eval_batch_size)
                  .map(as_pairs).prefetch(tf.data.AUTOTUNE).with_options(options))
    return train, validation


def _tensorflow_installed():
    """Whether TensorFlow can be imported (TensorBoard logs need it)."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def one_device_scope(args):
    """Under a Keras backend other than TensorFlow, a run trains on one device with no strategy:
    tf.distribute (--devices N > 1, TF_CONFIG with several workers) is a TensorFlow feature."""
    import keras

    from .distribution import cluster_workers

    backend = keras.backend.backend()
    if (args.devices or 1) > 1 or cluster_workers() > 1:
        asked = f"--devices {args.devices}" if (args.devices or 1) > 1 else f"TF_CONFIG ({cluster_workers()} workers)"
        raise RunError(f"{asked}: data-parallel training uses tf.distribute, a TensorFlow feature; run with "
                       f"KERAS_BACKEND=tensorflow (the backend now is {backend}), or on one device")
    return contextlib.nullcontext()


def main(argv=None):
    args = parse_args(argv)
    import keras

    from .distribution import cluster_workers, is_chief, make_strategy

    on_tensorflow = keras.backend.backend() == "tensorflow"
    turn_off_the_failing_remapper()
    # first: the strategy may split the CPU into logical devices
    strategy = make_strategy(args.devices) if on_tensorflow else None
    scope = strategy.scope() if strategy else one_device_scope(args)
    replicas = strategy.num_replicas_in_sync if strategy else 1
    if args.batch_size % replicas:
        raise RunError(f"--batch-size {args.batch_size} (the global batch) must be a multiple of the "
                       f"{replicas} replicas it is split across")
    import numpy as np

    import pixel_keras as pk
    from pixel_keras.data import load_dataset, with_labels
    from pixel_keras.fitting import TrainingBudget, compile_for_training, keep_model, make_optimizer
    from pixel_keras.xla import default_jit_compile
    from pixel_keras.io import load_model_file
    from .callbacks import EpochSummary, Forecast, Gallery, MetricsLog, StepTensorBoard
    from .checkpoints import RunCheckpoints, SaveCheckpoints
    from .evaluate import evaluate_model, report

    chief = is_chief(strategy)
    run_dir = pathlib.Path(args.run_dir)
    if not chief:  # other workers take part in every collective but write to their own folder
        run_dir = run_dir / f"worker-{strategy.cluster_resolver.task_id}"
    keras.utils.set_random_seed(args.seed)
    splits = load_dataset(args.dataset, args.data_dir, args.image_size, args.channels, args.seed, args.levels)
    splits = with_labels(splits) if args.conditional else splits
    config, saved_config = check_run_config(args.run_dir, args)
    jit_compile = {"auto": default_jit_compile(), "on": True, "off": False}[args.jit_compile]
    if args.multiscale and (splits.image_shape[0] % args.multiscale or splits.image_shape[1] % args.multiscale):
        raise RunError(f"--multiscale {args.multiscale} needs a height and width that it divides; "
                       f"{splits.name} images are {splits.image_shape[0]} x {splits.image_shape[1]}")

    total_steps = args.steps or args.epochs * args.steps_per_epoch
    with scope:
        scales = {} if args.multiscale is None else {"factor": args.multiscale}
        model = (pk.build_multiscale_model if scales else pk.build_model)(
            args.arch, splits.image_shape, splits.num_levels, num_layers=args.layers, hidden=args.hidden,
            residual=args.residual, skip=args.skip, num_classes=splits.num_classes if args.conditional else None,
            head=args.head, num_mixtures=args.num_mixtures, dropout=args.dropout, **scales)
        # the mixture head fits a view scoring the observed level only; `model` (same weights and
        # optimizer) is what checkpoints, best.keras, galleries and evaluation use
        fit_model = compile_for_training(model, make_optimizer(args.optimizer, args.learning_rate, args.weight_decay),
                                         jit_compile)
        checkpoints = RunCheckpoints(model, run_dir)
        step = checkpoints.restore()
        initial = source_rate = None
        if args.initial_model and step:
            print(f"--initial-model {args.initial_model} not used: {run_dir} resumes at step {step}")
        elif args.initial_model:
            step = checkpoints.start_from(load_model_file(args.initial_model)[0], args.initial_optimizer_state,
                                          args.initial_model)
            initial = {"model": args.initial_model, "step": step, "optimizer_state": args.initial_optimizer_state}
            source_rate = current_learning_rate(model.optimizer) if args.initial_optimizer_state else None
        progress = schedule_progress(model.optimizer, step, saved_config, args.lr_schedule)
        model.optimizer.learning_rate = args.learning_rate  # the restore set the rate saved; a resume may change it

    print(f"{args.arch} on {splits.name} {splits.image_shape} x {splits.num_levels} levels: "
          f"{model.count_params():,} parameters, {replicas} replica(s) on {keras.backend.backend()}, "
          f"{'resuming at step ' + str(step) if step and not initial else 'new run'} in {run_dir}"
          + (f", from {initial['model']}" + (f" at its step {step}" if initial["optimizer_state"] else "")
             if initial else ""), flush=True)
    if initial and args.lr_schedule == "cosine":
        ended = " (its own schedule had ended: rate 0)" if source_rate == 0 else ""
        print(f"a fresh cosine schedule from learning rate {args.learning_rate:g} to 0 over this run's steps and "
              f"minutes{ended}; --lr-schedule constant keeps the rate", flush=True)
    if saved_config and saved_config.get("learning_rate") != args.learning_rate:
        print(f"learning rate {saved_config.get('learning_rate')} -> {args.learning_rate} from step {step}")

    # Input: numpy batches (training/feed.py) for in-memory datasets off TensorFlow, so JAX needs no
    # TensorFlow; tf.data on TensorFlow and for TFDS datasets.
    numpy_feed = not on_tensorflow and splits.arrays is not None
    tensorboard = _tensorflow_installed()
    if not tensorboard:
        print(f"TensorBoard logs skipped: TensorFlow is not installed (learning curves: {run_dir / 'metrics.jsonl'})")
    if numpy_feed:
        from .feed import numpy_pipelines

        def pipelines(step):
            return numpy_pipelines(splits, args, step)
    else:
        import tensorflow as tf

        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA

        def pipelines(step):
            return *make_pipelines(splits, args, step, options), {}
    train, validation, fit_arguments = pipelines(step)
    gallery = None
    if args.gallery_size:
        if splits.arrays is not None:
            held_out = splits.arrays["validation"][:args.gallery_size]
            held_out_labels = splits.label_arrays["validation"][:args.gallery_size] if args.conditional else None
        else:
            held_out = list(splits.validation.take(args.gallery_size).as_numpy_iterator())
            held_out_labels = np.array([label for _, label in held_out]) if args.conditional else None
            held_out = np.stack([pair[0] for pair in held_out] if args.conditional else held_out)
        gallery = Gallery(held_out, splits.num_levels, run_dir / "logs" if tensorboard else None, run_dir / "gallery",
                          every=args.gallery_every, seed=args.seed, held_out_labels=held_out_labels,
                          num_classes=splits.num_classes if args.conditional else None)
        keep_model(gallery, model)  # the full model, also when no `fit` runs (a finished run re-run)
    budget = TrainingBudget(args.max_minutes, total_steps, args.lr_schedule, args.learning_rate, progress,
                            clock_in_schedule=cluster_workers() <= 1)  # workers' clocks differ, their rates may not
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        budget,
        SaveCheckpoints(checkpoints, args.checkpoint_every),
        EpochSummary(args.batch_size, splits.image_shape),
        Forecast(budget, args.batch_size),
        MetricsLog(run_dir / "metrics.jsonl", step),
        *([gallery] if gallery else []),
        *([StepTensorBoard(str(run_dir / "logs"), write_graph=True)] if tensorboard else []),
    ]
    # where the run's first weights came from, kept by every resume
    initial = initial or ((saved_config or {}).get("initial_model") if step else None)
    if initial:
        config["initial_model"] = initial
    if chief and config != saved_config:  # every check passed: training can start
        write_run_config(args.run_dir, config)
    verbose = 1 if sys.stdout.isatty() else 2
    complete_before = step >= total_steps or progress >= 1.0
    while step < total_steps and not budget.exhausted and budget.progress() < 1.0:
        initial_epoch, epochs, steps = next_fit(step, total_steps, args.steps_per_epoch)
        history = fit_model.fit(train, steps_per_epoch=steps, epochs=epochs, initial_epoch=initial_epoch,
                                validation_data=validation, callbacks=callbacks, verbose=verbose, shuffle=False,
                                **fit_arguments)
        if not np.isfinite(history.history["loss"][-1]):
            kept = checkpoints.saved_step
            raise RunError(
                f"loss became NaN; training stopped at step {checkpoints.step}. "
                + (f"The last state known to give a finite loss (step {kept}) is kept in {checkpoints.directory}"
                   if kept is not None else "No state was known to give a finite loss yet, so none is kept")
                + "; run again with a lower --learning-rate")
        step = checkpoints.step
        train, _, _ = pipelines(step)
    if complete_before:
        print(f"the run is already complete: {step} steps (of {total_steps})"
              + (", its cosine schedule ended; nothing to train (to train longer: a new --run-dir with more "
                 "--max-minutes or --steps)" if args.lr_schedule == "cosine" else "; nothing to train"))
    elif step >= total_steps:
        print(f"training finished: {step} steps")
    elif args.lr_schedule == "cosine" and budget.progress() >= 1.0:
        print(f"training finished: {step} steps, where the cosine schedule ended with the "
              f"{args.max_minutes:g}-minute budget")
    else:
        print(f"time budget of {args.max_minutes:g} minutes spent at step {step}; "
              "run the same command again to continue")
    if not chief:
        return
    evaluate_model(load_model_file(checkpoints.best_path)[0] if checkpoints.best_path.exists() else model,
                   splits, args.eval_batch_size, print_fn=print)
    report(run_dir, gallery.latest(step) if gallery else "none (--gallery-size 0)", tensorboard)


if __name__ == "__main__":
    run_cli(main)
