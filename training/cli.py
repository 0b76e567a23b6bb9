"""Command-line plumbing shared by the entry points: one-line errors instead of tracebacks."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class RunError(Exception):
    """A problem the user can fix (bad flag, missing data, unusable checkpoint); printed in one line."""


def run_cli(main, argv=None):
    """Call `main(argv)`; turn expected errors into `error: ...` on stderr and exit code 2
    (set PIXEL_KERAS_TRACEBACK=1 to see the traceback instead)."""
    from pixel_keras.data import DataError

    if os.environ.get("PIXEL_KERAS_TRACEBACK"):
        import keras

        keras.config.disable_traceback_filtering()
    try:
        return main(argv)
    except (RunError, DataError, ValueError) as error:
        if os.environ.get("PIXEL_KERAS_TRACEBACK"):
            raise
        message = " ".join(str(error).split())
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
