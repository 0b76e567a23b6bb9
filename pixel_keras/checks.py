"""Checks of the library's scalar arguments, shared by every public function that takes them (no
Keras here: the apps' argument parsers use the same bounds)."""

import numbers

# Sampling seeds: int64, the dtype of the SavedModel's `seed` and of TensorFlow's stateless seeds.
SEED_RANGE = (-2**63, 2**63 - 1)


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_batch_size(batch_size):
    """`batch_size` as an int: a positive integer (numpy's too), else a ValueError naming it."""
    if not _is_integer(batch_size) or batch_size < 1:
        raise ValueError(f"Expected batch_size to be a positive integer. Received batch_size={batch_size!r}.")
    return int(batch_size)


def check_seed(seed):
    """`seed` as an int: an integer within int64 (`SEED_RANGE`), else a ValueError naming it."""
    low, high = SEED_RANGE
    if not _is_integer(seed) or not low <= seed <= high:
        raise ValueError(f"Expected seed to be an integer in [-2**63, 2**63 - 1] (int64). Received seed={seed!r}.")
    return int(seed)


def check_positive_int(name, value):
    """`value` must be a positive int (not a bool), else a ValueError naming `name`."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Expected {name} to be a positive integer. Received {name}={value!r}.")


def check_image_shape(image_shape):
    """(height, width, channels) of positive ints with 1 or 3 channels, else a ValueError quoting it."""
    if len(tuple(image_shape)) != 3:
        raise ValueError(f"Expected image_shape=(height, width, channels). Received image_shape={image_shape!r}.")
    for name, value in zip(("height", "width", "channels"), image_shape):
        check_positive_int(f"image_shape {name}", value)
    if image_shape[2] not in (1, 3):
        raise ValueError(
            f"Expected 1 (grayscale) or 3 (RGB) channels. Received image_shape={tuple(image_shape)}."
        )
