"""Levels are declared, never made: the number of levels is the source's own (detected) or the
caller's `levels`, and data outside [0, levels) is a `DataError`, checked where the data enters
(in memory with numpy, in a tf.data pipeline in the graph)."""

import numpy as np

from pixel_keras.data.common import DEFAULT_LEVELS, DataError


def _declared_levels(name, detected, levels):
    """`levels` where the caller declares it, else the source's own `detected` levels."""
    if levels is None:
        return detected
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or not 2 <= levels <= DEFAULT_LEVELS:
        raise DataError(f"Expected levels, an integer in [2, {DEFAULT_LEVELS}] (every source here is 8-bit), "
                        f"for dataset {name!r}. Received levels={levels!r}.")
    if detected == 2 and levels != 2:  # 0/1 data modelled with more levels: a likelihood of another model
        raise DataError(f"Dataset {name!r} is binary (pixel values 0 and 1): it takes 2 levels (its NLL in nats per "
                        f"image), not more. Received levels={levels!r}.")
    return int(levels)


def _out_of_levels_message(name, levels, largest):
    return (f"Dataset {name!r} has pixel values up to {largest}, outside the {levels} levels declared for it "
            f"(values 0 .. {levels - 1}). Data is never requantised: declare at least {largest + 1} levels, "
            "or give data in range.")


def check_levels(name, images, levels):
    """Refuse in-memory `images` with a value outside [0, levels), naming the largest value found."""
    largest = int(images.max()) if images.size else 0
    if largest >= levels:
        raise DataError(_out_of_levels_message(name, levels, largest))


def assert_levels(dataset, name, levels):
    """`dataset` of uint8 images (or of (image, label) pairs) with an in-graph check: the first image
    with a value outside [0, levels) stops the pipeline with a message naming the dataset, the
    levels and that value."""
    import tensorflow as tf  # tf.data pipelines: a TensorFlow feature, imported only where used
    if levels > np.iinfo(np.uint8).max:  # every uint8 value is in range
        return dataset
    message = (f"Dataset {name} has a pixel value outside the {levels} levels declared for it "
               f"(values 0 .. {levels - 1}); data is never requantised. Largest value of the image:")

    def check(image, *label):
        largest = tf.reduce_max(image)
        with tf.control_dependencies([tf.debugging.Assert(largest < levels, [message, largest])]):
            return (tf.identity(image), *label) if label else tf.identity(image)

    return dataset.map(check, num_parallel_calls=tf.data.AUTOTUNE)
