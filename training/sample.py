"""Draw samples or complete images with a trained model and write an image grid.

    python -m training.sample --checkpoint runs/pixelcnn_fashion_mnist --num 16 --out samples.png
    python -m training.sample --checkpoint runs/pixelcnn_fashion_mnist/best.keras --complete test --out c.png
    python -m training.sample --checkpoint model.keras --complete photo.png --out c.png
    python -m training.sample --checkpoint runs/gated_pixelcnn_digits --label 3 --out threes.png

--complete takes an image file, a split of the run's dataset (train, validation, test), or
DATASET:SPLIT; the bottom half of each image is hidden and filled in (the paper's occlusion).
A class-conditional model (`training.run --conditional`) needs `--label N`: every image is drawn
(or completed) given class N.
A .keras file in a run directory is a model of that run (the split is of its dataset).
The grid is scaled up as the training galleries are (each image at least 112 pixels wide) and
written in the format its --out suffix names (.png, .jpg, .webp, ...).
"""

import argparse
import pathlib

from pixel_keras.cli import (HelpFormatter, RunError, add_verbose_flag, check_output_file, make_parent_directory,
                             number_range, positive_int, program_name, run_cli, sampling_seed,
                             turn_off_the_failing_remapper)
from pixel_keras.gallery import image_format
from pixel_keras.io import load_model_file, model_file_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def images_to_complete(source, count, image_shape, num_levels, config):
    """Up to `count` integer images from an image file (8-bit values quantised to `num_levels`),
    a split of the run's dataset, or DATASET:SPLIT."""
    import numpy as np

    from pixel_keras.data import load_dataset, load_image_file

    if pathlib.Path(source).suffix.lower() in IMAGE_SUFFIXES:
        if image_shape[0] != image_shape[1]:
            raise RunError(f"image files are cropped square; the model takes {image_shape}")
        image = load_image_file(source, image_shape[0], image_shape[2])[None]
        return np.round(image * ((num_levels - 1) / 255.0)).astype(np.int32)
    dataset, _, split = source.rpartition(":")
    if not dataset:
        if config is None:
            raise RunError(f"--complete {source}: name the dataset (DATASET:{source}) or give a run directory")
        dataset = config["dataset"]
    if split not in ("train", "validation", "test"):
        raise RunError(f"--complete: unknown split {split!r}; expected train, validation or test")
    options = config if config and config["dataset"] == dataset else {"data_dir": None, "image_size": image_shape[0],
                                                                       "channels": image_shape[2], "seed": 0}
    splits = load_dataset(dataset, options["data_dir"], options["image_size"], options["channels"], options["seed"],
                          options.get("levels"))
    if splits.image_shape != tuple(image_shape):
        raise RunError(f"{dataset} has images of shape {splits.image_shape}; the model takes {image_shape}")
    if splits.arrays is not None:  # in memory: no TensorFlow needed
        return splits.arrays[split][:count].astype(np.int32)
    return np.stack(list(getattr(splits, split).take(count).as_numpy_iterator())).astype(np.int32)


def main(argv=None):
    parser = argparse.ArgumentParser(prog=program_name("training.sample"), description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--checkpoint", required=True,
                        help="a .keras model file, a run directory or pretrained:NAME (a shipped model)")
    parser.add_argument("--num", type=positive_int, default=16, help="images to draw (or complete)")
    parser.add_argument("--out", default="samples.png",
                        help="image file to write, in the format its suffix names (.png, .jpg, .webp, ...); "
                             "missing folders are created")
    parser.add_argument("--complete", default=None, help="image file, SPLIT or DATASET:SPLIT to complete")
    parser.add_argument("--seed", type=sampling_seed, default=0, help="an integer in [-2**63, 2**63 - 1]")
    parser.add_argument("--temperature", type=number_range(0, low_open=True), default=1.0,
                        help="divides the logits: < 1 sharper, > 1 more varied")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="images per sampling loop call")
    parser.add_argument("--label", type=int, default=None,
                        help="class of every image, for a class-conditional model (required there)")
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    try:  # before any work: a suffix that names no format, or a file where a folder goes
        image_format(args.out)
    except ValueError as error:
        raise RunError(f"--out {error}") from None
    check_output_file(args.out, "--out")
    model_file_path(args.checkpoint)  # a bad name or file refused before Keras and TensorFlow load
    turn_off_the_failing_remapper()

    import numpy as np

    from pixel_keras.gallery import image_grid, scale_up, write_image
    from pixel_keras.progress import ProgressReport
    from pixel_keras.sampling import Sampler, batch_seed

    model, config = load_model_file(args.checkpoint)
    sampler = Sampler(model)
    if (sampler.num_classes is None) != (args.label is None) or (
            args.label is not None and not 0 <= args.label < sampler.num_classes):
        raise RunError(f"--label {args.label}: the model is unconditional, leave --label out"
                       if sampler.num_classes is None else
                       f"the model is class-conditional: give --label N with N in 0 .. {sampler.num_classes - 1}"
                       + ("" if args.label is None else f"; received --label {args.label}"))
    height = sampler.image_shape[0]
    originals = None
    if args.complete:
        originals = images_to_complete(args.complete, args.num, sampler.image_shape, sampler.num_levels, config)
    count = len(originals) if originals is not None else args.num
    progress = ProgressReport(count, "image")
    drawn = []
    for start in range(0, count, args.batch_size):
        size = min(args.batch_size, count - start)
        seed = batch_seed(args.seed, start // args.batch_size)
        labels = None if args.label is None else np.full(size, args.label, np.int32)
        if originals is None:
            batch = sampler.sample(size, seed=seed, temperature=args.temperature, labels=labels)
        else:
            known = np.zeros((height,) + sampler.image_shape[1:2], bool)
            known[: height // 2] = True
            batch = sampler.complete(originals[start:start + size], known, seed=seed, temperature=args.temperature,
                                     labels=labels)
        drawn.append(batch)
        progress.update(start + size)
    images = np.concatenate(drawn)
    if originals is None:
        grid = image_grid(images, sampler.num_levels)
    else:
        grid = image_grid(np.concatenate([images, originals]), sampler.num_levels, columns=count)
    make_parent_directory(args.out, "--out")
    try:
        write_image(args.out, scale_up(grid, sampler.image_shape[1]))
    except OSError as error:  # e.g. a format that takes no grey or RGB images
        raise RunError(f"--out {args.out}: cannot write it: {error}") from None
    print(f"wrote {args.out}: {count} {'completions (top row) and originals' if originals is not None else 'samples'}")


if __name__ == "__main__":
    run_cli(main)
