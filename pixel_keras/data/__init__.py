"""Datasets as tf.data pipelines of integer images (and, for sources read into memory, numpy arrays
that need no TensorFlow), with train / validation / test kept apart.

Sources: Fashion-MNIST (TFDS where prepared, else the Debian package's IDX files), MNIST (TFDS where
prepared, else the IDX files `python -m pixel_keras.fetch_mnist` puts in a folder), their stochastic
binarizations, scikit-learn's 8 x 8 digits, 32 x 32 RGB tiles of scikit-learn's two photographs
(`sample_photos`), any TFDS image dataset by name, and `folder:PATH`.

Two rules hold for every source:
- Test splits never depend on the run's seed (a test figure of seed 1 is on the test set of seed
  0): they are drawn with `FIXED_SPLIT_SEED`. The seed only picks the validation hold-out (out of
  the non-test images) and the training binarization.
- Levels are declared, never made: the number of levels is the source's own (detected) or the
  caller's `levels`, and data outside [0, levels) is a `DataError`, checked where the data enters.

One module per job (each imports its siblings directly; this package only re-exports their public
names, so `from pixel_keras.data import X` is the one import to use):
- `common`: `DataError`, `DataWarning`, the dataset names and the constants the rules above need.
- `levels`: levels declared and checked (`check_levels` in memory, `assert_levels` in tf.data).
- `splits`: `Splits`, train / validation / test of in-memory arrays, `with_labels`.
- `idx`: IDX files and MNIST's folder of them (`read_mnist_idx`, `mnist_idx_dir`).
- `tfds`: TFDS datasets by name (`is_tfds_dataset`) and the prepared copies the MNIST family reads.
- `mnist`: Fashion-MNIST and MNIST in memory (TFDS where prepared, else IDX files), binarized.
- `scikit_learn`: scikit-learn's digits and sample photographs.
- `images`: image files as a viewer shows them (`viewed_image`, `load_image_file`).
- `folders`: `folder:PATH`.
- `loading`: `load_dataset` and `load_arrays`, by name.
Importing this package imports numpy only: TensorFlow, TFDS, scikit-learn and PIL where used.
"""

from pixel_keras.data.common import (
    BINARIZED_SOURCES,
    DATASETS,
    DEFAULT_LEVELS,
    FIXED_SPLIT_SEED,
    IN_MEMORY_DATASETS,
    DataError,
    DataWarning,
)
from pixel_keras.data.folders import IMAGE_SUFFIXES, TINY_SPLIT
from pixel_keras.data.idx import (
    MNIST_CACHE_SUBDIR,
    MNIST_IDX_FILES,
    MNIST_LABEL_COUNTS,
    MNIST_SPLIT_SIZES,
    default_mnist_dir,
    mnist_idx_dir,
    read_mnist_idx,
)
from pixel_keras.data.images import EXACT_MODES, load_image_file, viewed_image
from pixel_keras.data.levels import assert_levels, check_levels
from pixel_keras.data.loading import load_arrays, load_dataset
from pixel_keras.data.mnist import FASHION_MNIST_IDX_DIR
from pixel_keras.data.scikit_learn import DIGITS_LEVELS, PHOTO_CROP, load_digit_labels, load_digits, load_sample_photos
from pixel_keras.data.splits import VALIDATION_FRACTION, Splits, with_labels
from pixel_keras.data.tfds import LEVELS_SAMPLE, PIP_NAMES, TFDS_LEVELS, TFDS_OFFLINE_HINTS, is_tfds_dataset

__all__ = [
    "BINARIZED_SOURCES", "DATASETS", "DEFAULT_LEVELS", "DIGITS_LEVELS", "EXACT_MODES", "FASHION_MNIST_IDX_DIR",
    "FIXED_SPLIT_SEED", "IMAGE_SUFFIXES", "IN_MEMORY_DATASETS", "LEVELS_SAMPLE", "MNIST_CACHE_SUBDIR",
    "MNIST_IDX_FILES", "MNIST_LABEL_COUNTS", "MNIST_SPLIT_SIZES", "PHOTO_CROP", "PIP_NAMES", "TFDS_LEVELS",
    "TFDS_OFFLINE_HINTS", "TINY_SPLIT", "VALIDATION_FRACTION",
    "DataError", "DataWarning", "Splits",
    "assert_levels", "check_levels", "default_mnist_dir", "is_tfds_dataset", "load_arrays", "load_dataset",
    "load_digit_labels", "load_digits", "load_image_file", "load_sample_photos", "mnist_idx_dir", "read_mnist_idx",
    "viewed_image", "with_labels",
]
