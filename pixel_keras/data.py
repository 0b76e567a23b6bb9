"""Datasets as tf.data pipelines of integer images, with train / validation / test kept apart.

Sources: Fashion-MNIST (TFDS where prepared, else the Debian package's IDX files), its stochastic
binarization, scikit-learn's 8 x 8 digits, any TFDS image dataset by name, and `folder:PATH`.
"""

import dataclasses
import gzip
import os
import pathlib

import numpy as np
import tensorflow as tf

FASHION_MNIST_IDX_DIR = "/usr/share/datasets/fashion-mnist"
DIGITS_LEVELS = 17  # scikit-learn's 8 x 8 digits take values 0 .. 16
VALIDATION_FRACTION = 0.1
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class DataError(ValueError):
    """A dataset cannot be found or read; the message says what to do."""


@dataclasses.dataclass
class Splits:
    """Three disjoint splits of unbatched uint8 images (H, W, C) and what a model needs to know."""

    name: str
    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    image_shape: tuple
    num_levels: int
    sizes: dict  # images per split; None where the source does not say


def load_digits(test_fraction=0.2, seed=0):
    """scikit-learn's bundled 8 x 8 digits as ((train, test), 17): uint8 arrays (N, 8, 8, 1)."""
    from sklearn.datasets import load_digits as sklearn_digits

    images = sklearn_digits().images.astype(np.uint8)[..., None]
    order = np.random.default_rng(seed).permutation(len(images))
    num_test = int(round(len(images) * test_fraction))
    return (images[order[num_test:]], images[order[:num_test]]), DIGITS_LEVELS


def _read_idx_images(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 16 or int.from_bytes(data[:4], "big") != 0x803:
        raise DataError(f"{path} is not an IDX image file (bad magic number).")
    count, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    if len(data) != 16 + count * rows * cols:
        raise DataError(f"{path} is truncated: expected {count} images of {rows} x {cols}.")
    return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols, 1)


def _fashion_mnist_arrays(data_dir):
    """(train, test) uint8 arrays from TFDS where prepared, else from the Debian package."""
    import tensorflow_datasets as tfds

    builder = tfds.builder("fashion_mnist", data_dir=data_dir)
    if builder.is_prepared():
        return tuple(
            np.stack([example["image"] for example in tfds.as_numpy(builder.as_dataset(split=split))])
            for split in ("train", "test")
        )
    idx_dir = pathlib.Path(os.environ.get("PIXEL_KERAS_FASHION_MNIST_DIR", FASHION_MNIST_IDX_DIR))
    files = [idx_dir / f"{prefix}-images-idx3-ubyte.gz" for prefix in ("train", "t10k")]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise DataError(
            f"Fashion-MNIST not found: not prepared in TFDS ({builder.data_dir}) and missing {', '.join(missing)}. "
            "Install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu, as root), or prepare it "
            "with TFDS on a machine with internet (`tfds build fashion_mnist`)."
        )
    return tuple(_read_idx_images(f) for f in files)


def _binarize(images, seed):
    """Stochastic binarization (as for the paper's binarized MNIST), fixed by `seed`."""
    probabilities = images.astype(np.float32) / 255.0
    return (np.random.default_rng(seed).random(images.shape) < probabilities).astype(np.uint8)


def load_image_file(path, image_size, channels):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            width, height = image.size
            side = min(width, height)
            left, top = (width - side) // 2, (height - side) // 2
            image = image.crop((left, top, left + side, top + side)).resize((image_size, image_size), Image.BILINEAR)
            array = np.asarray(image, np.uint8)
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"Cannot read image {path}: {error}") from None
    return array.reshape(image_size, image_size, channels)


def _folder_arrays(folder, image_size, channels, seed):
    """All images of a folder, centre-cropped and resized, split 80 / 10 / 10 by a fixed permutation."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise DataError(f"Image folder {folder} does not exist.")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(paths) < 3:
        raise DataError(f"Image folder {folder} has {len(paths)} PNG/JPEG images; at least 3 are needed.")
    images = np.stack([load_image_file(p, image_size, channels) for p in paths])
    order = np.random.default_rng(seed).permutation(len(images))
    num_test = max(1, len(images) // 10)
    return images[order[num_test:]], images[order[:num_test]]


def _from_arrays(name, train, test, num_levels, seed):
    """Splits from in-memory arrays; the validation split is held out of `train` by a fixed permutation."""
    order = np.random.default_rng(seed).permutation(len(train))
    num_validation = max(1, int(round(len(train) * VALIDATION_FRACTION)))
    validation, train = train[order[:num_validation]], train[order[num_validation:]]
    return Splits(
        name=name,
        train=tf.data.Dataset.from_tensor_slices(train),
        validation=tf.data.Dataset.from_tensor_slices(validation),
        test=tf.data.Dataset.from_tensor_slices(test),
        image_shape=tuple(train.shape[1:]),
        num_levels=num_levels,
        sizes={"train": len(train), "validation": len(validation), "test": len(test)},
    )


def _tfds_splits(name, data_dir):
    """A TFDS image dataset by name: validation is the last 10% of its train split."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
        if not builder.is_prepared():
            builder.download_and_prepare()
    except Exception as error:  # TFDS raises many types: unknown name, no network, bad files
        raise DataError(f"TFDS dataset {name!r} is not available: {str(error).splitlines()[0]}") from None
    if "image" not in builder.info.features:
        raise DataError(f"TFDS dataset {name!r} has no 'image' feature.")
    known_splits = builder.info.splits  # empty when TFDS has no metadata (e.g. generated test data)
    test_split = "test" if "test" in known_splits or not known_splits else "validation"
    if known_splits and test_split not in known_splits:
        raise DataError(f"TFDS dataset {name!r} has no test or validation split.")
    validation_percent = int(VALIDATION_FRACTION * 100)
    split_names = {
        "train": f"train[:{100 - validation_percent}%]",
        "validation": f"train[{100 - validation_percent}%:]",
        "test": test_split,
    }
    datasets = {
        key: builder.as_dataset(split=split).map(lambda example: example["image"])
        for key, split in split_names.items()
    }
    image_shape = tuple(builder.info.features["image"].shape)
    if None in image_shape:
        raise DataError(f"TFDS dataset {name!r} has images of varying size {image_shape}; use folder:PATH instead.")
    sizes = {key: known_splits[split].num_examples if known_splits else None for key, split in split_names.items()}
    return Splits(name, datasets["train"], datasets["validation"], datasets["test"], image_shape, 256, sizes)


DATASETS = ("fashion_mnist", "binarized_fashion_mnist", "digits", "folder:PATH", "<any TFDS image dataset>")


def load_dataset(name, data_dir=None, image_size=32, channels=None, seed=0):
    """Load a dataset by name as `Splits`.

    Args:
        name: "fashion_mnist" (default dataset), "binarized_fashion_mnist", "digits",
            "folder:PATH", or the name of a TFDS image dataset (e.g. "mnist", "cifar10",
            "downsampled_imagenet/32x32").
        data_dir: TFDS data directory.
        image_size: side of the square images made from a folder.
        channels: 1 or 3 for a folder (default 3).
        seed: fixes the validation hold-out, folder splits and the binarization.

    Raises:
        DataError: with a message saying what is missing or unreadable.
    """
    if name == "digits":
        (train, test), levels = load_digits(seed=seed)
        return _from_arrays(name, train, test, levels, seed)
    if name in ("fashion_mnist", "binarized_fashion_mnist"):
        train, test = _fashion_mnist_arrays(data_dir)
        if name == "binarized_fashion_mnist":
            return _from_arrays(name, _binarize(train, seed), _binarize(test, seed + 1), 2, seed)
        return _from_arrays(name, train, test, 256, seed)
    if name.startswith("folder:"):
        channels = 3 if channels is None else channels
        if channels not in (1, 3):
            raise DataError(f"Expected channels 1 or 3 for a folder. Received channels={channels}.")
        train, test = _folder_arrays(name[len("folder:"):], image_size, channels, seed)
        return _from_arrays(name, train, test, 256, seed)
    return _tfds_splits(name, data_dir)
