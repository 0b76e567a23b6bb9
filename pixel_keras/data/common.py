"""What every data module shares: the errors and warnings the apps show, the dataset names, and the
two constants of the rules every source keeps (8-bit levels, the seed of the fixed test splits).
Imports nothing of ours, so every other data module can import it."""

DEFAULT_LEVELS = 256  # 8-bit images
FIXED_SPLIT_SEED = 0  # test splits and the test binarization; independent of the run's seed

DATASETS = ("fashion_mnist", "binarized_fashion_mnist", "mnist", "stochastic_binarized_mnist", "digits",
            "sample_photos", "folder:PATH", "<any TFDS image dataset>")
# Sources read into memory whole: `load_arrays` gives them as numpy arrays, with no TensorFlow.
IN_MEMORY_DATASETS = ("fashion_mnist", "binarized_fashion_mnist", "mnist", "stochastic_binarized_mnist", "digits",
                      "sample_photos")
# Sources binarized here (each pixel on with probability value / 255): name -> the 8-bit source.
BINARIZED_SOURCES = {"binarized_fashion_mnist": "fashion_mnist", "stochastic_binarized_mnist": "mnist"}


class DataError(ValueError):
    """A dataset cannot be found or read; the message says what to do."""


class DataWarning(UserWarning):
    """Something about a dataset the user should know (skipped files, tiny splits); the apps print
    it as one `warning: ...` line."""
