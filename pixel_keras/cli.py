"""Command-line plumbing the applications share: one-line errors instead of tracebacks.

It lives in the library so that every app (training, export, benchmarks) uses the same error type
without importing another app: installed, the apps are not the top-level `training` / `export`.
"""

import os
import re
import sys


def program_name(module):
    """The name a usage line shows: the console script's (`pixel-keras-train`, ...) when the app runs
    as one, else `python -m module`."""
    script = os.path.basename(sys.argv[0]) if sys.argv else ""
    return script if script.startswith("pixel-keras-") else f"python -m {module}"


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
    except Exception as error:  # a graph assert of ours (e.g. data outside the declared levels)
        if os.environ.get("PIXEL_KERAS_TRACEBACK") or type(error).__name__ != "InvalidArgumentError":
            raise
        text = getattr(error, "message", str(error))
        # TensorFlow wraps an assert's message: "... assertion failed: [our message] [Condition ...]".
        found = re.search(r"assertion failed: \[([^\]]*)\](?: \[([^\]]*)\])?", text)
        if not found:  # not one of our checks: keep TensorFlow's traceback
            raise
        message = found.group(1) + (f" {found.group(2)}" if found.group(2) and "Condition" not in found.group(2) else "")
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
