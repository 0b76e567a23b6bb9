"""Out-of-distribution scores of a trained model: in-distribution test images against other sets.

    python -m training.ood --model pretrained:fashion_mnist_pixelcnn_6x48 --background runs/background \\
        --in fashion_mnist --out mnist --out digits --rescale-levels --out hflip:fashion_mnist

Prints one table (score x set: AUROC, AUPRC, FPR at 95% TPR; OOD is the positive class and every
score is oriented so that higher means more anomalous, so the likelihood's trap shows as AUROC < 0.5),
the cut that accepts 95% of in-distribution validation images, and writes into --output-dir a
histogram of each score (matplotlib, `pip install 'pixel_keras[plots]'`) and a heat-map gallery of the most
and least anomalous test images.

Sets (--out, repeatable): any dataset of `pixel_keras.data` (its test split; `mnist` offline from
`python -m pixel_keras.fetch_mnist`), `digits` (scikit-learn's 8 x 8 digits, 17 levels, upscaled
nearest-neighbour to the model's size), `folder:PATH` (all of a folder's images), and transformed
in-distribution test images: `noise:D` (uniform random levels of D's shape), `hflip:D`, `vflip:D`,
`invert:D` (level L - 1 - x). A set whose levels differ from the model's is refused unless
--rescale-levels maps them (then the scores judge the mapping too: 256 levels onto a binary model
is a threshold at half).
"""

import argparse
import pathlib
import re

import numpy as np

from pixel_keras.cli import (ExampleHelpFormatter, RunError, add_verbose_flag, check_directory, number_range,
                             positive_int, program_name, run_cli, turn_off_the_failing_remapper)

TRANSFORMS = ("noise", "hflip", "vflip", "invert")
SET_FORMS = ("NAME (fashion_mnist, mnist, digits, ... or a TFDS image dataset), folder:PATH, or a transformed "
             "set: noise:NAME, hflip:NAME, vflip:NAME, invert:NAME")
DEFAULT_OUTPUT_DIR = "runs/ood"  # under runs/, which git ignores
SCORES = ("likelihood", "likelihood ratio", "complexity (png)", "complexity (jxl)", "typicality (M=1)",
          "typicality (M=10)")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=program_name("training.ood"), description=__doc__,
                                     formatter_class=ExampleHelpFormatter)
    parser.add_argument("--model", required=True, help="a .keras file, a run directory or pretrained:NAME")
    parser.add_argument("--background", default=None,
                        help="the background model of the likelihood ratio (trained with --perturb-rate): "
                             "a .keras file, run directory or pretrained:NAME; without it, no ratio")
    parser.add_argument("--background-perturb-rate", type=number_range(0, 1, high_open=True), default=None, metavar="MU",
                        help="the --perturb-rate the background was trained with, whose noise floor "
                             "is taken out of its likelihoods (pixel_keras.ood.denoised_log_probs); "
                             "default: its run.json's, else 0 (0: its likelihoods as they are)")
    parser.add_argument("--in", dest="in_set", default="fashion_mnist", help="the in-distribution dataset")
    parser.add_argument("--out", dest="out_sets", action="append", default=None,
                        help="an out-of-distribution set (repeatable; default: mnist)")
    parser.add_argument("--images", type=positive_int, default=None,
                        help="score at most this many images of each set (default: all)")
    parser.add_argument("--reference-images", type=positive_int, default=2000,
                        help="training images whose mean NLL is the typicality reference")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="images per forward pass")
    parser.add_argument("--rescale-levels", action="store_true",
                        help="map a set with other levels than the model's onto them by scaling, round(v x (L - 1) / "
                             "(l - 1)): 17-level digits onto 256 levels; 256 levels onto a binary model is a threshold "
                             "at half (default: such a set is refused)")
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, help="where the histograms and the gallery go")
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    args.out_sets = args.out_sets or ["mnist"]
    if args.background_perturb_rate is not None and args.background is None:
        raise RunError("--background-perturb-rate describes the background model: give --background too")
    check_directory(args.output_dir, "--output-dir")
    return args


def _resize_nearest(images, height, width):
    rows = np.arange(height) * images.shape[1] // height
    cols = np.arange(width) * images.shape[2] // width
    return images[:, rows][:, :, cols]


def _fit_to_model(images, levels, image_shape, num_levels, name, rescale_levels=False):
    """Images of another size or channel count mapped onto the model's (digits: 8 x 8 -> 28 x 28),
    and of another level count only with `rescale_levels` (a mapping the scores would measure as
    much as the content); else a RunError naming both."""
    height, width, channels = image_shape
    if levels != num_levels and not rescale_levels:
        raise RunError(f"--out {name}: images with {levels} levels; the model takes {num_levels}: its scores would "
                       f"judge the level conversion, not the content; give --rescale-levels to map them by scaling, "
                       f"or a set with {num_levels} levels")
    if levels != num_levels:
        images = np.round(images.astype(np.float64) * (num_levels - 1) / (levels - 1)).astype(np.int32)
    if images.shape[1:3] != (height, width):
        images = _resize_nearest(images, height, width)
    if images.shape[-1] != channels:
        if images.shape[-1] != 1:
            raise RunError(f"--out {name}: images of {images.shape[-1]} channels; the model takes {channels}")
        images = np.repeat(images, channels, axis=-1)
    return images.astype(np.int32)


def check_set_name(name, flag="--out", given=None):
    """Refuse, before any model loads, a set that is none of the forms `SET_FORMS` names: an
    unknown transform, a missing folder, or a name that is neither ours nor a TFDS dataset (the
    error quotes `given`, the whole flag value)."""
    from pixel_keras.data import IN_MEMORY_DATASETS, is_tfds_dataset

    given = given or name
    kind, colon, base = name.partition(":")
    if colon and kind in TRANSFORMS:
        return check_set_name(base, flag, given) if base else _unknown_set(given, flag, f"{kind}: names no set")
    if colon and kind == "folder":
        if not pathlib.Path(base).is_dir():
            _unknown_set(given, flag, f"no folder {base!r}")
        return None
    if colon and not re.fullmatch(r"\d+(\.\d+)*", base):  # NAME:VERSION is a TFDS dataset
        _unknown_set(given, flag, f"unknown transform {kind!r}")
    if name == "digits" or name in IN_MEMORY_DATASETS or is_tfds_dataset(name):
        return None
    return _unknown_set(given, flag, "unknown dataset")


def _unknown_set(name, flag, problem):
    raise RunError(f"{flag} {name}: {problem}; a set is {SET_FORMS}")


def _dataset_split(name, split, image_shape, num_levels, limit=None):
    from pixel_keras.data import IN_MEMORY_DATASETS, load_arrays, load_dataset

    if name == "digits_raw":
        from sklearn.datasets import load_digits

        return load_digits().images.astype(np.int32)[..., None], 17
    if name.startswith("folder:"):
        splits = load_dataset(name, image_size=image_shape[0], channels=image_shape[2], levels=num_levels)
        return np.concatenate([splits.arrays[key] for key in ("train", "validation", "test")]), splits.num_levels
    if name not in IN_MEMORY_DATASETS:  # a TFDS dataset, read as training.run reads it
        splits = load_dataset(name)
        chosen = {"train": splits.train, "validation": splits.validation, "test": splits.test}[split]
        images = list(chosen.take(-1 if limit is None else limit).as_numpy_iterator())
        return np.stack(images).astype(np.int32), splits.num_levels
    arrays, _, levels = load_arrays(name)
    return arrays[split], levels


def load_set(name, image_shape, num_levels, limit, seed=0, rescale_levels=False, given=None):
    """Integer images (N, H, W, C) of the set `name` (see the module docstring), on the model's
    shape and levels (a set of other levels: a RunError naming `given`, the --out value, unless
    `rescale_levels`)."""
    kind, _, base = name.partition(":")
    if kind in TRANSFORMS:
        # noise takes only the set's shape: its levels are the model's whatever the set's
        images = load_set(base, image_shape, num_levels, limit, seed, rescale_levels or kind == "noise", given or name)
        if kind == "noise":
            return np.random.default_rng(seed).integers(0, num_levels, images.shape).astype(np.int32)
        return {"hflip": images[:, :, ::-1], "vflip": images[:, ::-1], "invert": num_levels - 1 - images}[kind]
    images, levels = _dataset_split("digits_raw" if name == "digits" else name, "test", image_shape, num_levels, limit)
    return _fit_to_model(images[:limit], levels, image_shape, num_levels, given or name, rescale_levels)


def score_sets(model, background, sets, reference, batch_size, progress=False, background_perturb_rate=0.0):
    """{set name: {score name: scores}} (higher = more anomalous) of each set's images; the
    background's likelihoods denoised for `background_perturb_rate` (`ood.denoised_log_probs`)."""
    from pixel_keras import ood
    from pixel_keras.inspection import model_spec

    table = {}
    for name, images in sets.items():
        if progress:
            print(f"scoring {name}: {len(images)} images", flush=True)
        nll = ood.likelihood_scores(model, images, batch_size=batch_size)
        scores = {"likelihood": nll}
        if background is not None:
            scores["likelihood ratio"] = nll + ood.background_log_prob(
                background, images, perturb_rate=background_perturb_rate, batch_size=batch_size)
        _, num_levels = model_spec(model)
        for compressor in ("png", "jxl"):  # JPEG XL where its plugin is installed (the ood extra)
            if ood.compressor_available(compressor):
                scores[f"complexity ({compressor})"] = nll / np.log(2.0) - ood.compressed_bits(images, num_levels,
                                                                                              compressor)
        scores["typicality (M=1)"] = np.abs(nll - reference)
        groups = len(nll) // 10
        if groups:  # a set of fewer than 10 images has no group of 10: the row is left empty
            scores["typicality (M=10)"] = np.abs(nll[:groups * 10].reshape(groups, 10).mean(axis=1) - reference)
        table[name] = scores
    return table


def histogram_name(score):
    """A score's file-name part: "likelihood ratio" -> likelihood_ratio, "complexity (jxl)" ->
    complexity_jxl, "typicality (M=10)" -> typicality_10."""
    return "_".join(score.replace("M=", "").replace("(", "").replace(")", "").split())


def write_histograms(table, in_set, output_dir, print_fn=print):
    """One PNG per score: its distribution on the in-distribution test images and each other set."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print_fn("histograms skipped: matplotlib is not installed (pip install 'pixel_keras[plots]')")
        return []
    paths = []
    for score in [score for score in SCORES if any(score in scores for scores in table.values())]:
        figure, axes = plt.subplots(figsize=(6, 3.5))
        for name, scores in table.items():
            if score in scores:  # typicality (M=10): not for a set of fewer than 10 images
                axes.hist(scores[score], bins=60, alpha=0.5, density=True, label=name)
        axes.set(xlabel=f"{score} (higher = more anomalous)", ylabel="density")
        axes.legend(fontsize=8)
        figure.tight_layout()
        path = output_dir / f"histogram_{histogram_name(score)}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        paths.append(path)
    return paths


def main(argv=None):
    args = parse_args(argv)
    for name in args.out_sets:  # every set checked before any model loads
        check_set_name(name)
    turn_off_the_failing_remapper()
    from pixel_keras import gallery, ood
    from pixel_keras.io import load_model_file
    from pixel_keras.inspection import model_spec
    from pixel_keras.likelihood import log_prob

    model, _ = load_model_file(args.model)
    background, background_run = load_model_file(args.background) if args.background else (None, None)
    perturb_rate = args.background_perturb_rate
    if perturb_rate is None:
        perturb_rate = float((background_run or {}).get("perturb_rate") or 0.0)
    if background is not None:
        try:
            ood.check_same_spec(model, background)
        except ValueError as error:
            raise RunError(f"--background: {error}") from None
    image_shape, num_levels = model_spec(model)
    from pixel_keras.data import load_arrays

    arrays, in_shape, in_levels = load_arrays(args.in_set)
    if tuple(in_shape) != tuple(image_shape) or in_levels != num_levels:
        raise RunError(f"--in {args.in_set}: images {tuple(in_shape)} with {in_levels} levels; the model takes "
                       f"{tuple(image_shape)} with {num_levels}")
    sets = {args.in_set: arrays["test"][:args.images].astype(np.int32)}
    for name in args.out_sets:
        sets[name] = load_set(name, image_shape, num_levels, args.images, rescale_levels=args.rescale_levels)
    print(f"scoring the typicality reference: {min(args.reference_images, len(arrays['train']))} training images",
          flush=True)
    reference = ood.mean_nll(model, arrays["train"][:args.reference_images].astype(np.int32), batch_size=args.batch_size)
    if background is not None and perturb_rate:
        print(f"background trained with --perturb-rate {perturb_rate:g}: its likelihoods without that noise's "
              f"floor (--background-perturb-rate 0: as they are)")
    table = score_sets(model, background, sets, reference, args.batch_size, progress=True,
                       background_perturb_rate=perturb_rate)

    width = max(26, *(len(name) + 2 for name in args.out_sets))  # a long set name never runs into its score
    header = f"{'out-of-distribution set':<{width}}{'score':<20}{'AUROC':>8}{'AUPRC':>8}{'FPR@95':>8}"
    print(f"in-distribution: {args.in_set} test ({len(sets[args.in_set])} images); typicality reference "
          f"{reference:.2f} nats (mean NLL of {min(args.reference_images, len(arrays['train']))} training images)")
    print("higher score = more anomalous; OOD positive; AUROC < 0.5: the score ranks OOD as more typical")
    print(header)
    shown = [score for score in SCORES  # typicality (M=10) always: an empty row says a set was too small
             if score == "typicality (M=10)" or any(score in scores for scores in table.values())]
    for name in args.out_sets:
        for score in shown:
            if score not in table[name] or score not in table[args.in_set]:
                print(f"{name:<{width}}{score:<20}{'-':>8}{'-':>8}{'-':>8}")
                continue
            in_scores, out_scores = table[args.in_set][score], table[name][score]
            print(f"{name:<{width}}{score:<20}{ood.auroc(in_scores, out_scores):>8.3f}"
                  f"{ood.auprc(in_scores, out_scores):>8.3f}{ood.fpr_at_95_tpr(in_scores, out_scores):>8.3f}")
    fewer = [name for name in sets if len(sets[name]) < 10]  # the sets with no typicality (M=10) score
    if fewer:
        print(f"-: typicality (M=10) scores groups of 10 images; {', '.join(fewer)} "
              f"{'has' if len(fewer) == 1 else 'have'} fewer")
    primary = "likelihood ratio" if background is not None else "likelihood"
    validation = arrays["validation"][:args.images].astype(np.int32)
    cut = ood.threshold(score_sets(model, background, {"v": validation}, reference, args.batch_size,
                                   background_perturb_rate=perturb_rate)["v"][primary])
    print(f"{primary}: the cut accepting 95% of {len(validation)} validation images is {cut:.2f} nats; above it, "
          + ", ".join(f"{name} {np.mean(ood.is_anomalous(table[name][primary], cut)):.1%}" for name in sets))

    output_dir = pathlib.Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = write_histograms(table, args.in_set, output_dir, print)
    everything = np.concatenate(list(sets.values()))
    ranked = np.argsort(np.concatenate([table[name][primary] for name in sets]))
    chosen = np.concatenate([ranked[::-1][:16], ranked[:16]])  # the most anomalous first, then the least
    grid = gallery.surprise_grid(everything[chosen], num_levels,
                                 log_prob(model, everything[chosen], args.batch_size, per_pixel=True), columns=8)
    gallery_path = output_dir / "most_and_least_anomalous.png"
    gallery.write_png(gallery_path, gallery.scale_up(grid, 2 * image_shape[1]))
    written.append(gallery_path)
    print(f"wrote {', '.join(str(path) for path in written)} (gallery: by {primary}, the 16 most anomalous in "
          "the top two rows, the 16 least below; each image beside its per-pixel NLL)")


if __name__ == "__main__":
    run_cli(main)
