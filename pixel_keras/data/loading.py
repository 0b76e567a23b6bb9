"""Datasets by name: `load_dataset` (tf.data `Splits` of every source) and `load_arrays` (numpy
arrays of the in-memory sources, no TensorFlow), dispatching to the module of each source."""

from pixel_keras.data.common import BINARIZED_SOURCES, DEFAULT_LEVELS, FIXED_SPLIT_SEED, IN_MEMORY_DATASETS, DataError
from pixel_keras.data.folders import _folder_splits
from pixel_keras.data.levels import _declared_levels
from pixel_keras.data.mnist import _binarize, _fashion_mnist_arrays, _fashion_mnist_labels, _mnist_arrays
from pixel_keras.data.scikit_learn import load_digit_labels, load_digits, load_sample_photos
from pixel_keras.data.splits import _from_arrays, _split_arrays
from pixel_keras.data.tfds import _tfds_splits


def load_dataset(name, data_dir=None, image_size=32, channels=None, seed=0, levels=None):
    """Load a dataset by name as `Splits`.

    Args:
        name: "fashion_mnist" (default dataset), "binarized_fashion_mnist", "mnist" (TFDS where
            prepared, else the IDX files of `pixel_keras.fetch_mnist`), "stochastic_binarized_mnist",
            "digits", "sample_photos" (32 x 32 x 3 tiles of scikit-learn's two photographs),
            "folder:PATH", or the name of a TFDS image dataset (e.g. "cifar10", "binarized_mnist"
            (the paper's fixed binarization), "downsampled_imagenet/32x32").
        data_dir: TFDS data directory.
        image_size: side of the square images made from a folder.
        channels: 1 or 3 for a folder (default 3).
        seed: fixes the validation hold-out and the training binarization (never a test split).
        levels: number of pixel levels, 2 .. 256 (default: the dataset's own: 17 for digits, 2 for
            the binarized ones, else 256). Data outside [0, levels) is refused, never requantised.

    Raises:
        DataError: with a message saying what is missing, unreadable or out of range.
    """
    if name in IN_MEMORY_DATASETS:
        train, test, num_levels, labels = _in_memory_source(name, data_dir, seed, levels)
        return _from_arrays(name, train, test, num_levels, seed, labels=labels,
                            num_classes=None if labels is None else 10)
    if name.startswith("folder:"):
        channels = 3 if channels is None else channels
        if channels not in (1, 3):
            raise DataError(f"Expected channels 1 or 3 for a folder. Received channels={channels}.")
        return _folder_splits(name, name[len("folder:"):], image_size, channels,
                              _declared_levels(name, DEFAULT_LEVELS, levels), seed)
    return _tfds_splits(name, data_dir, levels)


def _in_memory_source(name, data_dir, seed, levels):
    """(train, test, levels, (train_labels, test_labels) or None) of an `IN_MEMORY_DATASETS` source."""
    if name == "digits":
        (train, test), detected = load_digits()
        return train, test, _declared_levels(name, detected, levels), load_digit_labels()
    if name == "sample_photos":
        train, test = load_sample_photos()
        return train, test, _declared_levels(name, DEFAULT_LEVELS, levels), None
    num_levels = _declared_levels(name, 2 if name in BINARIZED_SOURCES else DEFAULT_LEVELS, levels)
    if BINARIZED_SOURCES.get(name, name) == "mnist":
        (train, test), labels = _mnist_arrays(data_dir)
    else:
        (train, test), labels = _fashion_mnist_arrays(data_dir), _fashion_mnist_labels(data_dir)
    if name in BINARIZED_SOURCES:
        train, test = _binarize(train, seed, 0), _binarize(test, FIXED_SPLIT_SEED, 1)
    return train, test, num_levels, labels


def load_arrays(name, data_dir=None, seed=0, levels=None):
    """An in-memory dataset's splits as numpy arrays, with no TensorFlow (numpy-fed training under
    any Keras backend, e.g. JAX on a machine without TensorFlow): the images of `load_dataset`'s
    splits, in the same order.

    Returns:
        ({"train", "validation", "test"}: uint8 arrays (N, H, W, C), image shape, number of levels).

    Raises:
        DataError: for a name not in `IN_MEMORY_DATASETS` (TFDS and folders need `load_dataset`), or
            as `load_dataset` does.
    """
    if name not in IN_MEMORY_DATASETS:
        raise DataError(f"load_arrays reads {', '.join(IN_MEMORY_DATASETS)}; use load_dataset (tf.data) for "
                        f"TFDS datasets and folders. Received name={name!r}.")
    train, test, num_levels, _ = _in_memory_source(name, data_dir, seed, levels)
    (train, validation, test), _ = _split_arrays(name, train, test, num_levels, seed)
    return {"train": train, "validation": validation, "test": test}, tuple(train.shape[1:]), num_levels
