"""Our Keras objects registered, and `.keras` files loaded with them: importing this module
registers every layer and loss of pixel_keras with Keras (what a plain `keras.models.load_model`
of one of our files needs), and `load_keras_file` loads a file with one-line errors.

    import keras
    import pixel_keras.saving  # noqa: F401  (registers our layers and losses)
    model = keras.models.load_model("best.keras")

`pixel_keras.load_model(path)` does this too, and takes run directories and `pretrained:NAME`.
"""

import zipfile

import keras

# Every module that defines a Keras-serializable object of ours (their import registers them).
from pixel_keras import heads, layers, losses  # noqa: F401

# What Keras raises for a damaged or foreign file (its own errors, the zip's, the JSON config's).
LOAD_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OSError, zipfile.BadZipFile)


def load_keras_file(path):
    """`keras.models.load_model(path)` with our objects registered (`pixel_keras.io.load_model`
    checks the path first, with no Keras).

    Raises:
        ValueError: one line naming the file, when it cannot be loaded.
    """
    try:
        return keras.models.load_model(path)
    except LOAD_ERRORS as error:
        raise ValueError(f"cannot load {path}: {str(error).splitlines()[0] if str(error) else type(error).__name__}") \
            from None
