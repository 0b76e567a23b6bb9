"""Entry points of the installed console scripts (setup.py): each app's `main` with one-line errors."""

from pixel_keras.cli import run_cli


def export():
    """`pixel-keras-export` = `python -m export.saved_model`."""
    from .saved_model import main

    run_cli(main)


def client():
    """`pixel-keras-client` = `python -m export.client`."""
    from .client import main

    run_cli(main)
