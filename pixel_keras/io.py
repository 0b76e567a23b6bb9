"""Loading a trained model from a `.keras` file, a run directory or `pretrained:NAME` (a model
shipped in the package, `pixel_keras.pretrained`): what several apps need."""

import json
import pathlib

from pixel_keras.cli import RunError


def load_keras_model(path):
    """`keras.models.load_model(path)` with our layers and losses registered first (`import
    pixel_keras` alone loads nothing, see its docstring); a RunError naming the file if it fails."""
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

    if pretrained.is_pretrained_reference(checkpoint):
        name = checkpoint[len(pretrained.PREFIX):]
        try:
            record = pretrained.pretrained_record(name)
            return pretrained.load_pretrained(name), record.get("run")
        except ValueError as error:  # not shipped, or not the file its record describes
            raise RunError(str(error)) from None
    path = pathlib.Path(checkpoint)
    if path.is_dir():
        path = path / "best.keras"
    # The run's settings: run.json of the run directory, or beside a .keras file of one (best.keras).
    settings = path.parent / "run.json"
    config = json.loads(settings.read_text()) if settings.exists() else None
    if not path.exists():
        raise RunError(f"no model at {path}: give a .keras file or a run directory with best.keras")
    return load_keras_model(path), config
