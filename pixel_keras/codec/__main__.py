"""`python -m pixel_keras.codec compress|decompress ...` (and the console script `pixel-keras-codec`):
the command line of `pixel_keras.codec.cli`, its errors as one line and exit status 2
(`pixel_keras.cli.run_cli`)."""

from pixel_keras.cli import run_cli
from pixel_keras.codec.cli import main


def run():
    """`pixel-keras-codec` = `python -m pixel_keras.codec`."""
    run_cli(main)


if __name__ == "__main__":
    run()
