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
