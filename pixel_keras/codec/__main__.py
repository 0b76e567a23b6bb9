"""`python -m pixel_keras.codec compress|decompress ...`: the command line of `pixel_keras.codec.cli`,
its errors as one line and exit status 2 (`pixel_keras.cli.run_cli`)."""

from pixel_keras.cli import run_cli
from pixel_keras.codec.cli import main

if __name__ == "__main__":
    run_cli(main)
