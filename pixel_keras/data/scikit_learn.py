"""The datasets bundled with scikit-learn, read offline: its 8 x 8 digits (with their labels) and
tiles of its two sample photographs. scikit-learn is imported only where one is read."""

import pathlib

import numpy as np

from pixel_keras.data.common import FIXED_SPLIT_SEED

DIGITS_LEVELS = 17  # scikit-learn's 8 x 8 digits take values 0 .. 16
PHOTO_CROP = 32  # sample_photos: side of the crops cut from scikit-learn's two photographs


def load_digits(test_fraction=0.2):
    """scikit-learn's bundled 8 x 8 digits as ((train, test), 17): uint8 arrays (N, 8, 8, 1); the
    test images are the same for every run (`FIXED_SPLIT_SEED`)."""
    from sklearn.datasets import load_digits as sklearn_digits

    return _digits_split(sklearn_digits().images.astype(np.uint8)[..., None], test_fraction), DIGITS_LEVELS


def load_digit_labels(test_fraction=0.2):
    """The digit (0 .. 9) of each image of `load_digits(test_fraction)`, in its order:
    (train_labels, test_labels), int32 arrays."""
    from sklearn.datasets import load_digits as sklearn_digits

    return _digits_split(sklearn_digits().target.astype(np.int32), test_fraction)


def load_sample_photos(crop=PHOTO_CROP):
    """Real RGB photographs offline: the non-overlapping crop x crop x 3 tiles (a grid from the
    top-left corner) of scikit-learn's china.jpg (training + validation) and flower.jpg (test), uint8
    arrays (260 tiles each for crop = 32: 13 x 20 of a 427 x 640 photograph). Two photographs, so
    no test tile shares a pixel or a scene with a training tile."""
    from sklearn.datasets import load_sample_images

    bunch = load_sample_images()
    photos = dict(zip((pathlib.Path(path).name for path in bunch.filenames), bunch.images))

    def tiles(photo):
        rows, cols = photo.shape[0] // crop, photo.shape[1] // crop
        grid = photo[:rows * crop, :cols * crop].reshape(rows, crop, cols, crop, 3)
        return np.ascontiguousarray(grid.transpose(0, 2, 1, 3, 4).reshape(-1, crop, crop, 3))

    return tiles(photos["china.jpg"]), tiles(photos["flower.jpg"])


def _digits_split(values, test_fraction):
    """(train, test) of the digits' images or labels by the fixed split (`FIXED_SPLIT_SEED`)."""
    order = np.random.default_rng(FIXED_SPLIT_SEED).permutation(len(values))
    num_test = int(round(len(values) * test_fraction))
    return values[order[num_test:]], values[order[:num_test]]
