"""The MNIST family: Fashion-MNIST and MNIST as in-memory arrays with their labels, each from TFDS
where prepared, else from IDX files (the Debian package's for Fashion-MNIST, `mnist_idx_dir()` for
MNIST), and their stochastic binarization."""

import os
import pathlib

import numpy as np

from pixel_keras.data.common import DataError
from pixel_keras.data.idx import _read_idx_images, _read_idx_labels, mnist_idx_dir, read_mnist_idx
from pixel_keras.data.tfds import TFDS_OFFLINE_HINTS, _prepared_tfds, _tfds_builder

FASHION_MNIST_IDX_DIR = "/usr/share/datasets/fashion-mnist"


def _prepared_fashion_mnist(data_dir):
    """(tfds, TFDS builder) of Fashion-MNIST where TFDS has it prepared, else None."""
    return _prepared_tfds("fashion_mnist", data_dir)


def _fashion_mnist_arrays(data_dir):
    """(train, test) uint8 arrays from TFDS where prepared, else from the Debian package."""
    prepared = _prepared_fashion_mnist(data_dir)
    if prepared:
        tfds, builder = prepared
        return tuple(
            np.stack([example["image"] for example in tfds.as_numpy(builder.as_dataset(split=split))])
            for split in ("train", "test")
        )
    idx_dir = pathlib.Path(os.environ.get("PIXEL_KERAS_FASHION_MNIST_DIR", FASHION_MNIST_IDX_DIR))
    files = [idx_dir / f"{prefix}-images-idx3-ubyte.gz" for prefix in ("train", "t10k")]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise DataError(
            f"Fashion-MNIST not found: not prepared in TFDS (data_dir={data_dir}) and missing {', '.join(missing)}. "
            "Install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu, as root), or prepare it "
            "with TFDS on a machine with internet (`tfds build fashion_mnist`)."
        )
    return tuple(_read_idx_images(f) for f in files)


def _fashion_mnist_labels(data_dir):
    """(train, test) int32 class labels (10 classes) in the order of `_fashion_mnist_arrays`."""
    prepared = _prepared_fashion_mnist(data_dir)
    if prepared:
        tfds, builder = prepared
        return tuple(
            np.array([example["label"] for example in tfds.as_numpy(builder.as_dataset(split=split))], np.int32)
            for split in ("train", "test")
        )
    idx_dir = pathlib.Path(os.environ.get("PIXEL_KERAS_FASHION_MNIST_DIR", FASHION_MNIST_IDX_DIR))
    files = [idx_dir / f"{prefix}-labels-idx1-ubyte.gz" for prefix in ("train", "t10k")]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise DataError(f"Fashion-MNIST labels not found: missing {', '.join(missing)}.")
    return tuple(_read_idx_labels(f) for f in files)


def _mnist_arrays(data_dir):
    """((train, test) uint8 images, (train, test) int32 labels) of MNIST: TFDS's where prepared, else
    the IDX folder (`mnist_idx_dir`), else TFDS's download where it can (TensorFlow and a network)."""
    prepared = _prepared_tfds("mnist", data_dir)
    folder = mnist_idx_dir()
    if prepared is None and (os.environ.get("PIXEL_KERAS_MNIST_DIR") or folder.exists()):
        return read_mnist_idx(folder)
    if prepared is None:
        try:
            import tensorflow  # noqa: F401  (TFDS imports it lazily and fails late without it)
            import tensorflow_datasets as tfds
        except ImportError:
            raise DataError(f"MNIST not found: no IDX files in {folder} (nor TensorFlow Datasets to download it); "
                            f"{TFDS_OFFLINE_HINTS['mnist'].format(mnist_dir=folder)}.") from None
        prepared = tfds, _tfds_builder("mnist", data_dir)
    tfds, builder = prepared
    examples = {split: list(tfds.as_numpy(builder.as_dataset(split=split))) for split in ("train", "test")}
    return (tuple(np.stack([example["image"] for example in examples[split]]) for split in ("train", "test")),
            tuple(np.array([example["label"] for example in examples[split]], np.int32) for split in ("train", "test")))


def _binarize(images, seed, purpose):
    """Stochastic binarization (as for the paper's binarized MNIST), fixed by (`seed`, `purpose`):
    purpose 0 is the training binarization, 1 the test one, so the two never share random draws."""
    probabilities = images.astype(np.float32) / 255.0
    return (np.random.default_rng([seed, purpose]).random(images.shape) < probabilities).astype(np.uint8)
