"""Trained models shipped inside the package: `load_pretrained(name)` gives a ready model with no
training and no network, under any Keras backend (a .keras file needs no TensorFlow to load).

Each model is two files in `pretrained_models/`: NAME.keras and its record NAME.json (how it was
trained, on what data under which licence, its test figure, and the figure on the first
`check.images` test images that the tests hold it to). Adding a model is adding those two files.
Apps take `pretrained:NAME` wherever they take a model file, through `pixel_keras.io.load_model_file`.
Keras-free to import (the apps check a name before they import TensorFlow).
"""

import hashlib
import json
import pathlib

PREFIX = "pretrained:"
FOLDER = pathlib.Path(__file__).resolve().parent / "pretrained_models"


def pretrained_names():
    """The shipped models' names, sorted: each NAME.json record that has its NAME.keras beside it."""
    return sorted(path.stem for path in FOLDER.glob("*.json") if path.with_suffix(".keras").is_file())


def _checked_name(name):
    names = pretrained_names()
    if name not in names:
        raise ValueError(f"no pretrained model {name!r}; the shipped ones are: {', '.join(names) or 'none'}")
    return name


def pretrained_record(name):
    """The record of a shipped model (a dict from NAME.json: command, dataset, steps, figures, licence...).

    Raises:
        ValueError: for a name that is not shipped, listing the names that are.
    """
    return json.loads((FOLDER / f"{_checked_name(name)}.json").read_text())


def pretrained_path(name):
    """The path of a shipped model's .keras file (ValueError for an unknown name, as `pretrained_record`)."""
    return FOLDER / f"{_checked_name(name)}.keras"


def verified_path(name):
    """The path of a shipped model's .keras file once its SHA-256 is the one its record holds: a
    changed or damaged file (or another model's copied over it) would load and score silently wrong.

    Raises:
        ValueError: for a name that is not shipped, or a file whose hash differs from its record
            (naming the file).
    """
    path, expected = pretrained_path(name), pretrained_record(name).get("sha256")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise ValueError(f"{path} has SHA-256 {digest}, not the {expected} its record {path.with_suffix('.json').name} "
                         "holds: the shipped file was changed or damaged; reinstall pixel_keras")
    return path


def is_pretrained_reference(reference):
    """Whether a model argument (`--model`, `--checkpoint`, `--run-dir`) names a shipped model."""
    return isinstance(reference, str) and reference.startswith(PREFIX)


def load_pretrained(name):
    """A shipped model, loaded and ready to score and sample (`pretrained_names()` lists them).

    Accepts the bare name or `pretrained:NAME`.

    Raises:
        ValueError: for a name that is not shipped, listing the names that are, or a file whose
            SHA-256 is not the one recorded with it.
    """
    from pixel_keras.saving import load_keras_file  # Keras: imported when a model is loaded

    name = name[len(PREFIX):] if is_pretrained_reference(name) else name
    return load_keras_file(verified_path(name))
