"""Train / validation / test splits of in-memory arrays (validation held out by the run's seed), the
`Splits` every source returns, and its labelled form for class-conditional training."""

from __future__ import annotations  # `tf.data.Dataset` fields: TensorFlow is imported where used

import dataclasses

import numpy as np

from pixel_keras.data.common import DataError
from pixel_keras.data.levels import check_levels

VALIDATION_FRACTION = 0.1


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
    # Class labels where the source has them (class-conditional training): per split, a dataset of
    # int32 labels in the order of that split's images (zip the two); None where it has none.
    labels: dict = None
    num_classes: int = None
    # Where the source stores image and label together (TFDS): per split, (image, label) pairs read
    # in one pass, which `with_labels` uses instead of reading the source twice to zip.
    pairs: dict = None
    # In-memory sources (read whole: fashion_mnist, digits, folder:PATH, ...): the same splits as
    # numpy arrays, {split: uint8 images}, and {split: int32 labels} where the source has labels:
    # input without tf.data, so without TensorFlow. None for TFDS sources. Where TensorFlow is not
    # installed, such a source's tf.data fields (train, validation, test, labels) are None.
    arrays: dict = None
    label_arrays: dict = None
    # Set by `with_labels`: the splits are of (image, label) pairs (class-conditional training).
    paired: bool = False


def _from_arrays(name, train, test, num_levels, seed, num_validation=None, labels=None, num_classes=None):
    """Splits from in-memory arrays (checked against `num_levels`); the validation split, 10% of
    `train` unless `num_validation` says how many, is held out of `train` by a `seed` permutation.
    `labels`: optional (train_labels, test_labels) of `num_classes` classes, split alike."""
    (train, validation, test), labels = _split_arrays(name, train, test, num_levels, seed, num_validation, labels)
    arrays = {"train": train, "validation": validation, "test": test}
    try:
        import tensorflow as tf  # tf.data pipelines: a TensorFlow feature, imported only where used
    except ImportError:  # the numpy form alone (`arrays`)
        datasets, label_datasets = dict.fromkeys(arrays), None
    else:
        datasets = {key: tf.data.Dataset.from_tensor_slices(values) for key, values in arrays.items()}
        label_datasets = labels and {key: tf.data.Dataset.from_tensor_slices(values) for key, values in labels.items()}
    return Splits(
        name=name,
        **datasets,
        image_shape=tuple(train.shape[1:]),
        num_levels=num_levels,
        sizes={"train": len(train), "validation": len(validation), "test": len(test)},
        labels=label_datasets,
        num_classes=num_classes if labels is not None else None,
        arrays=arrays,
        label_arrays=labels,
    )


def _split_arrays(name, train, test, num_levels, seed, num_validation=None, labels=None):
    """((train, validation, test) arrays, {split: int32 labels} or None): what `_from_arrays` wraps
    in tf.data and `load_arrays` returns as is (numpy only)."""
    check_levels(name, np.concatenate([train.reshape(-1), test.reshape(-1)]), num_levels)
    order = np.random.default_rng(seed).permutation(len(train))
    if num_validation is None:
        num_validation = max(1, int(round(len(train) * VALIDATION_FRACTION)))
    validation, train = train[order[:num_validation]], train[order[num_validation:]]
    if labels is not None:
        train_labels, test_labels = labels
        labels = {"train": train_labels[order[num_validation:]], "validation": train_labels[order[:num_validation]],
                  "test": test_labels}
        labels = {key: values.astype(np.int32) for key, values in labels.items()}
    return (train, validation, test), labels


def with_labels(splits):
    """`splits` whose train / validation / test datasets yield (image, label) pairs, for
    class-conditional training.

    Raises:
        DataError: where the source has no class labels, or fewer than two classes.
    """
    in_memory = splits.train is None  # an in-memory source without TensorFlow: numpy arrays only
    has_labels = (splits.label_arrays is not None if in_memory
                  else splits.pairs is not None or splits.labels is not None)
    if not has_labels or (splits.num_classes or 0) < 2:
        raise DataError(
            f"Dataset {splits.name!r} has no class labels (of at least 2 classes) for a class-conditional model: "
            "fashion_mnist, binarized_fashion_mnist, mnist, stochastic_binarized_mnist, digits, TFDS datasets "
            "with a 'label' feature and folder:PATH with one sub-folder per class have them. "
            f"Received num_classes={splits.num_classes}."
        )
    if in_memory:  # its arrays pair up as they are
        return dataclasses.replace(splits, paired=True)
    import tensorflow as tf  # tf.data pipelines: a TensorFlow feature, imported only where used

    paired = splits.pairs or {key: tf.data.Dataset.zip((getattr(splits, key), splits.labels[key]))
                              for key in ("train", "validation", "test")}
    return dataclasses.replace(splits, **paired, paired=True)
