"""IDX files (the gzipped format of MNIST and Fashion-MNIST) read with numpy alone, and MNIST's
folder of them: where it is (PIXEL_KERAS_MNIST_DIR, else the user's cache, where
`python -m pixel_keras.fetch_mnist` puts it) and its files checked to be MNIST's."""

import gzip
import os
import pathlib

import numpy as np

from pixel_keras.data.common import DataError

# MNIST's IDX files: the folder PIXEL_KERAS_MNIST_DIR names, else this one under the user's cache
# ($XDG_CACHE_HOME, else ~/.cache), where `python -m pixel_keras.fetch_mnist` puts them by default.
MNIST_CACHE_SUBDIR = ("pixel_keras", "mnist")
MNIST_SPLIT_SIZES = {"train": 60000, "t10k": 10000}  # IDX file prefix -> images (28 x 28)
# prefix -> (images, labels): gzipped IDX files named as on LeCun's site (and as Fashion-MNIST's)
MNIST_IDX_FILES = {prefix: (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz")
                   for prefix in MNIST_SPLIT_SIZES}
MNIST_LABEL_COUNTS = {  # images per digit 0 .. 9: tells MNIST from another 28 x 28 set (Fashion-MNIST)
    "train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "t10k": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
}


def _gunzip(path):
    """The bytes of a gzipped file; a file cut short or not gzipped is a `DataError` naming it."""
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as error:  # BadGzipFile is an OSError; a cut stream ends in EOFError
        raise DataError(f"{path} is truncated or not a gzip file: {error}") from None


def _read_idx_images(path):
    data = _gunzip(path)
    if len(data) < 16 or int.from_bytes(data[:4], "big") != 0x803:
        raise DataError(f"{path} is not an IDX image file (bad magic number).")
    count, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    if len(data) != 16 + count * rows * cols:
        raise DataError(f"{path} is truncated: expected {count} images of {rows} x {cols}.")
    return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols, 1)


def _read_idx_labels(path):
    data = _gunzip(path)
    if len(data) < 8 or int.from_bytes(data[:4], "big") != 0x801:
        raise DataError(f"{path} is not an IDX label file (bad magic number).")
    count = int.from_bytes(data[4:8], "big")
    if len(data) != 8 + count:
        raise DataError(f"{path} is truncated: expected {count} labels.")
    return np.frombuffer(data, np.uint8, offset=8).astype(np.int32)


def default_mnist_dir():
    """Where MNIST's IDX files are read from when PIXEL_KERAS_MNIST_DIR is unset, and where
    `python -m pixel_keras.fetch_mnist` puts them: pixel_keras/mnist in $XDG_CACHE_HOME or ~/.cache."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(cache, *MNIST_CACHE_SUBDIR)


def mnist_idx_dir():
    """The folder of MNIST's IDX files: PIXEL_KERAS_MNIST_DIR where set, else `default_mnist_dir()`."""
    return pathlib.Path(os.environ.get("PIXEL_KERAS_MNIST_DIR") or default_mnist_dir())


def read_mnist_idx(folder):
    """MNIST's four gzipped IDX files in `folder` as ((train, test) uint8 images (N, 28, 28, 1),
    (train, test) int32 labels), checked to be MNIST's: 60,000 / 10,000 images of 28 x 28 and
    MNIST's number of images per digit (a Fashion-MNIST folder has the same sizes).

    Raises:
        DataError: naming the folder without the files, or the file that is not IDX, truncated or
            not MNIST's.
    """
    folder = pathlib.Path(folder)
    missing = [name for names in MNIST_IDX_FILES.values() for name in names if not (folder / name).is_file()]
    if missing:
        raise DataError(f"MNIST's IDX files are not in {folder} (missing {', '.join(missing)}); fetch them with "
                        f"`python -m pixel_keras.fetch_mnist {folder}`.")
    images, labels = [], []
    for prefix, count in MNIST_SPLIT_SIZES.items():
        image_path, label_path = (folder / name for name in MNIST_IDX_FILES[prefix])
        split_images, split_labels = _read_idx_images(image_path), _read_idx_labels(label_path)
        if split_images.shape != (count, 28, 28, 1):
            raise DataError(f"{image_path} holds {split_images.shape[0]} images of {split_images.shape[1]} x "
                            f"{split_images.shape[2]}; MNIST's holds {count} of 28 x 28.")
        per_digit = np.bincount(split_labels, minlength=10).tolist()
        if per_digit != list(MNIST_LABEL_COUNTS[prefix]):
            raise DataError(f"{label_path} is not MNIST's: {len(split_labels)} labels, per digit 0 .. 9 {per_digit}; "
                            f"MNIST's are {count}, {list(MNIST_LABEL_COUNTS[prefix])} (another dataset?).")
        images.append(split_images)
        labels.append(split_labels)
    return tuple(images), tuple(labels)
