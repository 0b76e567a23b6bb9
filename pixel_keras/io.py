"""Loading a trained model from a `.keras` file, a run directory or `pretrained:NAME` (a model
shipped in the package, `pixel_keras.pretrained`): `load_model`, and the checks the apps run on
such an argument before they import Keras. Keras-free to import."""

import json
import pathlib
import zipfile

from pixel_keras import pretrained


def check_keras_file(path):
    """The path, once it is a readable .keras file, checked with no Keras (a .keras file is a zip
    archive; Keras says "File not found" of a truncated one that exists).

    Raises:
        ValueError: naming the path, when there is no file or it is not a zip archive.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"no model at {path}: give a .keras file or a run directory with best.keras")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a readable .keras file (not a zip archive: truncated, damaged or of "
                         "another format)")
    return path


def model_file_path(checkpoint):
    """The .keras file that `load_model_file(checkpoint)` loads, checked with no Keras: a shipped
    model's verified path, a run directory's best.keras, or the file itself. Apps call it before
    importing Keras and TensorFlow, so that a bad name costs no start-up.

    Raises:
        ValueError: for a pretrained name that is not shipped (listing those that are) or whose file
            differs from its record, a missing model, or a file that is not a .keras archive.
    """
    if pretrained.is_pretrained_reference(checkpoint):
        return pretrained.verified_path(checkpoint[len(pretrained.PREFIX):])
    path = pathlib.Path(checkpoint)
    return check_keras_file(path / "best.keras" if path.is_dir() else path)


def load_keras_model(path):
    """`keras.models.load_model(path)` with our layers and losses registered, the path checked first.

    Raises:
        ValueError: one line naming the file, when it is missing or cannot be loaded.
    """
    check_keras_file(path)
    from pixel_keras.saving import load_keras_file  # Keras: imported when a model is loaded

    return load_keras_file(path)


def load_model_file(checkpoint):
    """(model, run config or None) from a .keras file, a run directory (its best.keras) or
    `pretrained:NAME`; the config is the run.json of the run directory the model file is in, if
    any (a shipped model's: the run.json recorded with it).

    Raises:
        ValueError: naming the path, when there is no model there or it cannot be loaded, or the
            pretrained name that is not shipped (listing those that are).
    """
    path = model_file_path(checkpoint)
    if pretrained.is_pretrained_reference(checkpoint):
        return load_keras_model(path), pretrained.pretrained_record(checkpoint[len(pretrained.PREFIX):]).get("run")
    # The run's settings: run.json of the run directory, or beside a .keras file of one (best.keras).
    settings = path.parent / "run.json"
    config = json.loads(settings.read_text()) if settings.exists() else None
    return load_keras_model(path), config


def load_model(path):
    """A model of ours, ready to score, sample and train: the way to load one.

    Args:
        path: a `.keras` file, a run directory of `training.run` (its best.keras), or
            `pretrained:NAME` (a shipped model, its SHA-256 checked).

    Returns:
        The `keras.Model`.

    Raises:
        ValueError: one line naming the problem: no model there, not a .keras archive, a file Keras
            cannot load, an unknown or altered shipped model.

    Example:

    >>> import pixel_keras as pk
    >>> model = pk.load_model("pretrained:fashion_mnist_pixelcnn_6x48")  # doctest: +SKIP
    >>> pk.bits_per_dim(model, images)  # doctest: +SKIP
    """
    return load_model_file(path)[0]
