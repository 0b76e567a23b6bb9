"""`folder:PATH`: a folder's PNG / JPEG images (in one sub-folder per class, for labels) read into
memory and split 80 / 10 / 10, unreadable files skipped and tiny splits reported as `DataWarning`s."""

import pathlib
import warnings

import numpy as np

from pixel_keras.data.common import FIXED_SPLIT_SEED, DataError, DataWarning
from pixel_keras.data.images import load_image_file
from pixel_keras.data.splits import _from_arrays

# A folder's validation or test split below this many images gets a warning: one image more or
# less moves its figures by several percent (a folder needs >= 95 images for 10 of each).
TINY_SPLIT = 10
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _tenth(count):
    return max(1, int(round(count * 0.1)))


def _folder_splits(name, folder, image_size, channels, levels, seed):
    """A folder's readable images split 80 / 10 / 10 (train / validation / test, of the whole); the
    test images are fixed (`FIXED_SPLIT_SEED`), the validation ones follow `seed`. Unreadable files
    are skipped with one warning naming them."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise DataError(f"Image folder {folder} does not exist.")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    images, classes, unreadable = [], [], []
    for path in paths:
        try:
            images.append(load_image_file(path, image_size, channels))
            classes.append(path.relative_to(folder).parts[0] if len(path.relative_to(folder).parts) > 1 else None)
        except DataError as error:
            unreadable.append((path, error))
    if paths and not images:
        raise DataError(f"None of the {len(paths)} PNG/JPEG files in {folder} can be read; "
                        f"the first: {unreadable[0][1]}")
    if unreadable:
        shown = ", ".join(str(path.relative_to(folder)) for path, _ in unreadable[:5])
        warnings.warn(f"Skipped {len(unreadable)} unreadable image file(s) of {len(paths)} in {folder}: "
                      f"{shown}{', ...' if len(unreadable) > 5 else ''}", DataWarning, stacklevel=3)
    if len(images) < 3:
        raise DataError(f"Image folder {folder} has {len(images)} readable PNG/JPEG images; at least 3 are needed.")
    images = np.stack(images)
    order = np.random.default_rng(FIXED_SPLIT_SEED).permutation(len(images))
    num_test = num_validation = _tenth(len(images))
    if num_test < TINY_SPLIT:
        warnings.warn(f"Image folder {folder} has {len(images)} readable images: {len(images) - 2 * num_test} "
                      f"train, {num_validation} validation and {num_test} test image(s); validation and test "
                      f"figures on fewer than {TINY_SPLIT} images are noisy", DataWarning, stacklevel=3)
    labels, class_names = None, sorted(set(classes) - {None})
    if class_names and None not in classes:  # one sub-folder per class: labels in sorted folder-name order
        indices = np.array([class_names.index(sub_folder) for sub_folder in classes], np.int32)
        labels = indices[order[num_test:]], indices[order[:num_test]]
    return _from_arrays(name, images[order[num_test:]], images[order[:num_test]], levels, seed,
                        num_validation=num_validation, labels=labels, num_classes=len(class_names))
