"""Entry points of the installed console scripts (setup.py): each app's `main` with one-line errors."""

from pixel_keras.cli import run_cli


def train():
    """`pixel-keras-train` = `python -m training.run`."""
    from .run import main

    run_cli(main)


def evaluate():
    """`pixel-keras-evaluate` = `python -m training.evaluate`."""
    from .evaluate import main

    run_cli(main)


def sample():
    """`pixel-keras-sample` = `python -m training.sample`."""
    from .sample import main

    run_cli(main)


def ood():
    """`pixel-keras-ood` = `python -m training.ood`."""
    from .ood import main

    run_cli(main)
