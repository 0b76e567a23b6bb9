"""Loading a trained model from a `.keras` file, a run directory or `pretrained:NAME` (a model
shipped in the package, `pixel_keras.pretrained`): what several apps need."""

import json
import pathlib
import zipfile

from pixel_keras.cli import RunError


def check_keras_file(path):
    """Refuse, before Keras is imported, a path that is not a readable .keras file (a .keras file
    is a zip archive; Keras says "File not found" of a truncated one that exists)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise RunError(f"no model at {path}: give a .keras file or a run directory with best.keras")
    if not zipfile.is_zipfile(path):
        raise RunError(f"{path} is not a readable .keras file (not a zip archive: truncated, damaged or of "
                       "another format)")
    return path


def model_file_path(checkpoint):
    """The .keras file that `load_model_file(checkpoint)` loads, checked with no Keras: a shipped
    model's verified path, a run directory's best.keras, or the file itself. Apps call it before
    importing Keras and TensorFlow, so that a bad name costs no start-up.

    Raises:
        RunError: for a pretrained name that is not shipped (listing those that are) or whose file
            differs from its record, a missing model, or a file that is not a .keras archive.
    """
    from pixel_keras import pretrained

    if pretrained.is_pretrained_reference(checkpoint):
        try:
            return pretrained.verified_path(checkpoint[len(pretrained.PREFIX):])
        except ValueError as error:  # not shipped, or not the file its record describes
            raise RunError(str(error)) from None
    path = pathlib.Path(checkpoint)
    return check_keras_file(path / "best.keras" if path.is_dir() else path)


def load_keras_model(path):
    """`keras.models.load_model(path)` with our layers and losses registered first (`import
    pixel_keras` alone loads nothing, see its docstring); a RunError naming the file if it fails."""
    check_keras_file(path)
    import keras

    import pixel_keras

    pixel_keras.load_all()
    try:
        return keras.models.load_model(path)
    except Exception as error:  # Keras raises many types for a damaged or foreign file
        raise RunError(f"cannot load {path}: {str(error).splitlines()[0]}") from None


def load_model_file(checkpoint):
    """(model, run config or None) from a .keras file, a run directory (its best.keras) or
    `pretrained:NAME`; the config is the run.json of the run directory the model file is in, if
    any (a shipped model's: the run.json recorded with it).

    Raises:
        RunError: naming the path, when there is no model there or it cannot be loaded, or the
            pretrained name that is not shipped (listing those that are).
    """
    from pixel_keras import pretrained

    path = model_file_path(checkpoint)
    if pretrained.is_pretrained_reference(checkpoint):
        return load_keras_model(path), pretrained.pretrained_record(checkpoint[len(pretrained.PREFIX):]).get("run")
    # The run's settings: run.json of the run directory, or beside a .keras file of one (best.keras).
    settings = path.parent / "run.json"
    config = json.loads(settings.read_text()) if settings.exists() else None
    return load_keras_model(path), config
