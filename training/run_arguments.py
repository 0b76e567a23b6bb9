"""The settings of `python -m training.run`: its flags, in groups, with the checks that need no
data and no Keras (a bad flag fails in one line before anything slow starts), and run.json, the
settings a run records and checks a resume against (`training.run.parse_args` is `parse_args`).
"""

import argparse
import json
import os
import pathlib

from pixel_keras.cli import (HelpFormatter, RunError, add_verbose_flag, check_directory, int_range, non_negative_int,
                             number_range, positive_int, program_name)
from pixel_keras.cpu_defaults import CPU_MINUTES, CPU_SIZES
from pixel_keras.archs import arch_names, get_arch, resolve_arch
from pixel_keras.head_registry import get_head, head_names, resolve_head
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

# The first line of training/run.py's docstring: the app's --help starts with it.
DESCRIPTION = "Train, validate, checkpoint and evaluate a PixelCNN / PixelRNN."


def parse_args(argv=None):
    """The run's settings from `argv`, checked and completed (the arch's CPU size and minutes, the
    default run directory); a RunError or argparse's exit on a bad flag."""
    parser = argparse.ArgumentParser(prog=program_name("training.run"), description=DESCRIPTION,
                                     formatter_class=HelpFormatter)
    # One flat list in this order (the --help order); the groups only split the code.
    for add_group in (_add_data_flags, _add_model_flags, _add_optimizer_flags, _add_head_and_noise_flags,
                      _add_length_flags, _add_run_flags):
        add_group(parser)
    add_verbose_flag(parser)
    return check_args(parser.parse_args(argv))


def _add_data_flags(parser):
    """--arch (listing the registry now: built-ins and registered archs) and the data's flags."""
    parser.add_argument("--arch", required=True, help="; ".join(
        f"{name} ({get_arch(name).description})" for name in arch_names())
        + "; or package.module:NAME, an arch that the module registers when imported (pixel_keras.register_arch; "
          "run.json keeps the reference, so a resume imports the module again)")
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


def _add_model_flags(parser):
    """The network's size and shape."""
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


def _add_optimizer_flags(parser):
    """The batch, the optimizer and its learning-rate schedule."""
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


def _add_head_and_noise_flags(parser):
    """The output head, and what regularises training (dropout, input noise, weight decay)."""
    # No argparse choices: a package.module:NAME reference is checked with the registry (check_args).
    parser.add_argument("--head", default="categorical",
                        help="output head: " + "; ".join(f"{name}: {get_head(name).description}" for name in head_names())
                        + "; or package.module:NAME, a head that the module registers when imported "
                          "(pixel_keras.register_head)")
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


def _add_length_flags(parser):
    """How long the run trains and how often it validates."""
    parser.add_argument("--epochs", type=positive_int, default=20, help="epochs of --steps-per-epoch steps")
    parser.add_argument("--steps-per-epoch", type=positive_int, default=1000,
                        help="steps between validations, checkpoints and galleries")
    parser.add_argument("--steps", type=positive_int, default=None, help="total steps, exactly (overrides --epochs)")
    parser.add_argument("--max-minutes", type=number_range(0), default=None,
                        help=f"stop training after this many minutes of this invocation, where a cosine schedule "
                             f"ends (0: no limit; default per arch: {CPU_MINUTES})")
    parser.add_argument("--validation-images", type=positive_int, default=1000,
                        help="validation images scored after every epoch (a resume may change it)")


def _add_run_flags(parser):
    """Where the run starts from and writes to, its devices, checkpoints, galleries and evaluation."""
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


def check_args(args):
    """`args` checked across flags and completed with the arch's defaults, before any data or Keras
    loads (a bad name or an unreadable --initial-model fails at once); returns `args`. `arch_name`
    and `head_name` are the registered names that --arch and --head give (which keep the flags'
    text: a package.module:NAME reference is what run.json records)."""
    args.arch_name = registered_name("--arch", args.arch, resolve_arch, arch_names)
    args.head_name = registered_name("--head", args.head, resolve_head, head_names)
    default_layers, default_hidden = CPU_SIZES[args.arch_name]
    args.layers = default_layers if args.layers is None else args.layers
    args.hidden = default_hidden if args.hidden is None else args.hidden
    args.max_minutes = CPU_MINUTES[args.arch_name] if args.max_minutes is None else args.max_minutes
    if args.initial_optimizer_state and not args.initial_model:
        raise RunError("--initial-optimizer-state needs --initial-model MODEL (whose optimizer state it takes)")
    if args.initial_model:  # before any data or Keras: a bad name or an unreadable file
        try:
            model_file_path(args.initial_model)
        except (RunError, ValueError) as error:  # pixel_keras.io's one-line errors
            raise RunError(f"--initial-model: {error}") from None
    if args.run_dir is None:
        args.run_dir = os.path.join("runs", f"{args.arch_name}_{args.dataset.replace('/', '_').replace(':', '_')}")
    check_directory(args.run_dir, "--run-dir")  # before any data is loaded
    return args


def registered_name(flag, reference, resolve, names):
    """The registered name that `reference` (a name, or package.module:NAME) gives, importing the
    module of a reference (which registers its entries); a one-line RunError saying what failed."""
    try:
        return resolve(reference)
    except ValueError as error:  # the resolver's one line: no such module, or a name not registered
        if ":" in reference:
            raise RunError(f"unknown {flag} {reference!r}: {error}") from None
        raise RunError(f"unknown {flag} {reference!r}; expected one of {', '.join(names())}") from None


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
