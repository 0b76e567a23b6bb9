"""Loading a trained model from a `.keras` file or a run directory (what several apps need)."""

import json
import pathlib

from pixel_keras.cli import RunError


def load_model_file(checkpoint):
    """(model, run config or None) from a .keras file or a run directory (its best.keras).

    Raises:
        RunError: naming the path, when there is no model there or it cannot be loaded.
    """
    import keras

    path = pathlib.Path(checkpoint)
    config = None
    if path.is_dir():
        if (path / "run.json").exists():
            config = json.loads((path / "run.json").read_text())
        path = path / "best.keras"
    if not path.exists():
        raise RunError(f"no model at {path}: give a .keras file or a run directory with best.keras")
    try:
        return keras.models.load_model(path), config
    except Exception as error:  # Keras raises many types for a damaged or foreign file
        raise RunError(f"cannot load {path}: {str(error).splitlines()[0]}") from None
