"""Small offline datasets as integer image arrays."""

import numpy as np

DIGITS_LEVELS = 17  # scikit-learn's 8 x 8 digits take values 0 .. 16


def load_digits(test_fraction=0.2, seed=0):
    """scikit-learn's bundled 8 x 8 digits as ((train, test), num_levels).

    Args:
        test_fraction: share of the 1,797 images held out for testing.
        seed: seed of the fixed permutation that splits them.

    Returns:
        ((train, test), 17) with uint8 arrays of shape (N, 8, 8, 1).
    """
    from sklearn.datasets import load_digits as sklearn_digits

    images = sklearn_digits().images.astype(np.uint8)[..., None]
    order = np.random.default_rng(seed).permutation(len(images))
    num_test = int(round(len(images) * test_fraction))
    return (images[order[num_test:]], images[order[:num_test]]), DIGITS_LEVELS
