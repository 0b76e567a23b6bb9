"""Train, validate, checkpoint and evaluate a PixelCNN / PixelRNN.

    python -m training.run --arch pixelcnn            # Fashion-MNIST, CPU-sized model, < 30 min
    python -m training.run --arch row_lstm --dataset cifar10 --layers 12 --hidden 128 --max-minutes 0

Re-running the same command resumes from the run directory's latest checkpoint.
"""

import contextlib
import pathlib
import sys

from pixel_keras.cli import RunError, run_cli, turn_off_the_failing_remapper
from pixel_keras.extras import install_line, install_note

# The flags and run.json's settings (`training.run.parse_args` is the app's parser).
from .run_arguments import check_run_config, parse_args, write_run_config


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
                       f"KERAS_BACKEND=tensorflow (the backend now is {backend}), or on one device"
                       + install_note("tensorflow"))
    return contextlib.nullcontext()


def main(argv=None):
    """Train the run directory's model from where it stands: a new run, a resume, or a finished run
    re-run (which reports and evaluates it again). Every check passes before run.json is written."""
    args = parse_args(argv)
    import keras

    from .distribution import cluster_workers, is_chief

    strategy, scope, replicas = distribution(args)
    import numpy as np

    from pixel_keras.fitting import TrainingBudget, compile_for_training, keep_model, make_optimizer
    from pixel_keras.xla import default_jit_compile
    from pixel_keras.io import load_model_file
    from .checkpoints import RunCheckpoints
    from .evaluate import evaluate_model, report

    chief = is_chief(strategy)
    run_dir = pathlib.Path(args.run_dir)
    if not chief:  # other workers take part in every collective but write to their own folder
        run_dir = run_dir / f"worker-{strategy.cluster_resolver.task_id}"
    keras.utils.set_random_seed(args.seed)
    splits, config, saved_config = load_run_data(args)
    jit_compile = {"auto": default_jit_compile(), "on": True, "off": False}[args.jit_compile]
    total_steps = args.steps or args.epochs * args.steps_per_epoch
    with scope:
        model = build_run_model(args, splits)
        # the mixture head fits a view scoring the observed level only; `model` (same weights and
        # optimizer) is what checkpoints, best.keras, galleries and evaluation use
        fit_model = compile_for_training(model, make_optimizer(args.optimizer, args.learning_rate, args.weight_decay),
                                         jit_compile)
        checkpoints = RunCheckpoints(model, run_dir)
        step, initial, source_rate = restore_or_start(args, model, checkpoints, run_dir)
        progress = schedule_progress(model.optimizer, step, saved_config, args.lr_schedule)
        model.optimizer.learning_rate = args.learning_rate  # the restore set the rate saved; a resume may change it
    announce(args, splits, model, f"{replicas} replica(s) on {keras.backend.backend()}", step, initial, source_rate,
             saved_config, run_dir)
    tensorboard = _tensorflow_installed()
    if not tensorboard:
        print(f"TensorBoard logs skipped: TensorFlow is not installed (learning curves: {run_dir / 'metrics.jsonl'}; "
              f"{install_line('tensorflow')} adds TensorBoard)")
    pipelines = pipeline_maker(args, splits)
    train, validation, fit_arguments = pipelines(step)
    gallery = make_gallery(args, splits, run_dir, tensorboard)
    if gallery is not None:
        keep_model(gallery, model)  # the full model, also when no `fit` runs (a finished run re-run)
    budget = TrainingBudget(args.max_minutes, total_steps, args.lr_schedule, args.learning_rate, progress,
                            clock_in_schedule=cluster_workers() <= 1)  # workers' clocks differ, their rates may not
    callbacks = make_callbacks(args, splits.image_shape, budget, checkpoints, run_dir, step, gallery, tensorboard)
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
            raise diverged(checkpoints)
        step = checkpoints.step
        train, _, _ = pipelines(step)
    print(outcome(args, step, total_steps, complete_before, budget))
    if not chief:
        return
    evaluate_model(load_model_file(checkpoints.best_path)[0] if checkpoints.best_path.exists() else model,
                   splits, args.eval_batch_size, print_fn=print)
    report(run_dir, gallery.latest(step) if gallery else "none (--gallery-size 0)", tensorboard)


def distribution(args):
    """(strategy or None, its scope, replicas), set up first: the strategy may split the CPU into
    logical devices. A global batch that the replicas cannot share evenly is refused."""
    import keras

    from .distribution import make_strategy

    on_tensorflow = keras.backend.backend() == "tensorflow"
    turn_off_the_failing_remapper()
    strategy = make_strategy(args.devices) if on_tensorflow else None
    scope = strategy.scope() if strategy else one_device_scope(args)
    replicas = strategy.num_replicas_in_sync if strategy else 1
    if args.batch_size % replicas:
        raise RunError(f"--batch-size {args.batch_size} (the global batch) must be a multiple of the "
                       f"{replicas} replicas it is split across")
    return strategy, scope, replicas


def load_run_data(args):
    """(splits, settings to record, run.json's settings or None): the data, then the flags checked
    against the run directory's settings, so that a mismatch is refused before any model is built."""
    from pixel_keras.data import load_dataset, with_labels

    splits = load_dataset(args.dataset, args.data_dir, args.image_size, args.channels, args.seed, args.levels)
    splits = with_labels(splits) if args.conditional else splits
    config, saved_config = check_run_config(args.run_dir, args)
    if args.multiscale and (splits.image_shape[0] % args.multiscale or splits.image_shape[1] % args.multiscale):
        raise RunError(f"--multiscale {args.multiscale} needs a height and width that it divides; "
                       f"{splits.name} images are {splits.image_shape[0]} x {splits.image_shape[1]}")
    return splits, config, saved_config


def build_run_model(args, splits):
    """The untrained model the flags describe (multi-scale with --multiscale); called in the
    strategy's scope, so that its variables are mirrored."""
    import pixel_keras as pk

    scales = {} if args.multiscale is None else {"factor": args.multiscale}
    return (pk.build_multiscale_model if scales else pk.build_model)(
        args.arch_name, splits.image_shape, splits.num_levels, num_layers=args.layers, hidden=args.hidden,
        residual=args.residual, skip=args.skip, num_classes=splits.num_classes if args.conditional else None,
        head=args.head_name, num_mixtures=args.num_mixtures, dropout=args.dropout, **scales)


def restore_or_start(args, model, checkpoints, run_dir):
    """(step, the --initial-model record or None, that model's learning rate or None): a run
    directory with a checkpoint resumes from it, which --initial-model cannot override; a new run
    starts from --initial-model's weights (and, asked, its optimizer state and step)."""
    from pixel_keras.io import load_model_file

    step = checkpoints.restore()
    if args.initial_model and step:
        print(f"--initial-model {args.initial_model} not used: {run_dir} resumes at step {step}")
    if not args.initial_model or step:
        return step, None, None
    step = checkpoints.start_from(load_model_file(args.initial_model)[0], args.initial_optimizer_state,
                                  args.initial_model)
    initial = {"model": args.initial_model, "step": step, "optimizer_state": args.initial_optimizer_state}
    source_rate = current_learning_rate(model.optimizer) if args.initial_optimizer_state else None
    return step, initial, source_rate


def announce(args, splits, model, devices, step, initial, source_rate, saved_config, run_dir):
    """Print what this invocation trains (model, data, devices; new, resumed or from --initial-model)
    and any learning rate that differs from the run's own, before the first (slow) step."""
    print(f"{args.arch_name} on {splits.name} {splits.image_shape} x {splits.num_levels} levels: "
          f"{model.count_params():,} parameters, {devices}, "
          f"{'resuming at step ' + str(step) if step and not initial else 'new run'} in {run_dir}"
          + (f", from {initial['model']}" + (f" at its step {step}" if initial["optimizer_state"] else "")
             if initial else ""), flush=True)
    if initial and args.lr_schedule == "cosine":
        ended = " (its own schedule had ended: rate 0)" if source_rate == 0 else ""
        print(f"a fresh cosine schedule from learning rate {args.learning_rate:g} to 0 over this run's steps and "
              f"minutes{ended}; --lr-schedule constant keeps the rate", flush=True)
    if saved_config and saved_config.get("learning_rate") != args.learning_rate:
        print(f"learning rate {saved_config.get('learning_rate')} -> {args.learning_rate} from step {step}")


def pipeline_maker(args, splits):
    """`pipelines(step) -> (train, validation, extra fit arguments)`, the input from optimizer step
    `step` on: numpy batches (training/feed.py) for in-memory datasets off TensorFlow, so that JAX
    needs no TensorFlow; tf.data on TensorFlow and for TFDS datasets."""
    import keras

    if keras.backend.backend() != "tensorflow" and splits.arrays is not None:
        from .feed import numpy_pipelines

        return lambda step: numpy_pipelines(splits, args, step)
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return lambda step: (*make_pipelines(splits, args, step, options), {})


def make_gallery(args, splits, run_dir, tensorboard):
    """The Gallery callback drawing samples and completions of the first --gallery-size validation
    images (the same ones on every resume); None with --gallery-size 0."""
    if not args.gallery_size:
        return None
    import numpy as np

    from .callbacks import Gallery

    if splits.arrays is not None:
        held_out = splits.arrays["validation"][:args.gallery_size]
        held_out_labels = splits.label_arrays["validation"][:args.gallery_size] if args.conditional else None
    else:
        held_out = list(splits.validation.take(args.gallery_size).as_numpy_iterator())
        held_out_labels = np.array([label for _, label in held_out]) if args.conditional else None
        held_out = np.stack([pair[0] for pair in held_out] if args.conditional else held_out)
    return Gallery(held_out, splits.num_levels, run_dir / "logs" if tensorboard else None, run_dir / "gallery",
                   every=args.gallery_every, seed=args.seed, held_out_labels=held_out_labels,
                   num_classes=splits.num_classes if args.conditional else None)


def make_callbacks(args, image_shape, budget, checkpoints, run_dir, step, gallery, tensorboard):
    """The callbacks of every `fit` call, in the order they must run: NaN stop, budget (sets the
    rate), checkpoints, summaries, metrics, gallery, TensorBoard."""
    import keras

    from .callbacks import EpochSummary, Forecast, MetricsLog, StepTensorBoard
    from .checkpoints import SaveCheckpoints

    return [
        keras.callbacks.TerminateOnNaN(),
        budget,
        SaveCheckpoints(checkpoints, args.checkpoint_every),
        EpochSummary(args.batch_size, image_shape),
        Forecast(budget, args.batch_size),
        MetricsLog(run_dir / "metrics.jsonl", step),
        *([gallery] if gallery else []),
        *([StepTensorBoard(str(run_dir / "logs"), write_graph=True)] if tensorboard else []),
    ]


def diverged(checkpoints):
    """The RunError of a NaN loss: which state, if any, is kept, and what to try."""
    kept = checkpoints.saved_step
    return RunError(
        f"loss became NaN; training stopped at step {checkpoints.step}. "
        + (f"The last state known to give a finite loss (step {kept}) is kept in {checkpoints.directory}"
           if kept is not None else "No state was known to give a finite loss yet, so none is kept")
        + "; run again with a lower --learning-rate")


def outcome(args, step, total_steps, complete_before, budget):
    """The line saying how training ended: already complete, finished, or cut by the time budget
    (then re-running the command continues it)."""
    if complete_before:
        return (f"the run is already complete: {step} steps (of {total_steps})"
                + (", its cosine schedule ended; nothing to train (to train longer: a new --run-dir with more "
                   "--max-minutes or --steps)" if args.lr_schedule == "cosine" else "; nothing to train"))
    if step >= total_steps:
        return f"training finished: {step} steps"
    if args.lr_schedule == "cosine" and budget.progress() >= 1.0:
        return (f"training finished: {step} steps, where the cosine schedule ended with the "
                f"{args.max_minutes:g}-minute budget")
    return f"time budget of {args.max_minutes:g} minutes spent at step {step}; run the same command again to continue"


if __name__ == "__main__":
    run_cli(main)
