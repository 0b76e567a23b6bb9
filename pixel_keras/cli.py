"""Command-line plumbing the applications share: one-line errors instead of tracebacks, the
argparse `type=` validators of every numeric flag (a bad value is refused by argparse with one
`error: argument --flag: ...` line and exit status 2, before anything is loaded or written), and
output a newcomer can read (TensorFlow's start-up chatter filtered out, its failing remapper off).

It lives in the library so that every app (training, export, benchmarks) uses the same error type
without importing another app: installed, the apps are not the top-level `training` / `export`.
No Keras or TensorFlow at import (`--help` of every app imports neither); only
`turn_off_the_failing_remapper` imports them, when an app is about to load a model.
"""

import argparse
import math
import os
import pathlib
import re
import sys
import urllib.parse
import warnings

from pixel_keras.checks import SEED_RANGE
from pixel_keras.data import DataError, DataWarning
from pixel_keras.extras import missing_module_line


def program_name(module):
    """The name a usage line shows: the console script's (`pixel-keras-train`, ...) when the app runs
    as one, else `python -m module`."""
    script = os.path.basename(sys.argv[0]) if sys.argv else ""
    return script if script.startswith("pixel-keras-") else f"python -m {module}"


class RunError(Exception):
    """A problem the user can fix (bad flag, missing data, unusable checkpoint); printed in one line."""


def int_range(low, high=None):
    """An argparse `type`: an integer in [low, high] (no upper bound when `high` is None)."""
    bounds = f">= {low}" if high is None else f"in [{low}, {high}]"

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer {bounds}; received {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be an integer {bounds}; received {value}")
        return value

    parse.__name__ = f"integer {bounds}"
    return parse


positive_int = int_range(1)
non_negative_int = int_range(0)
sampling_seed = int_range(*SEED_RANGE)  # what `pk.sample` takes (an int64, as the SavedModel's `seed`)


def number_range(low=None, high=None, low_open=False, high_open=False):
    """An argparse `type`: a finite float within the bounds given (open where `*_open`); NaN and
    infinities are always refused (they would pass or defeat a comparison silently)."""

    def shown(bound):
        return str(int(bound)) if float(bound).is_integer() else str(bound)

    if low is not None and high is not None:
        bounds = f" in {'(' if low_open else '['}{shown(low)}, {shown(high)}{')' if high_open else ']'}"
    elif low is not None:
        bounds = f" {'>' if low_open else '>='} {shown(low)}"
    else:
        bounds = "" if high is None else f" {'<' if high_open else '<='} {shown(high)}"
    description = f"a finite number{bounds}"

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {description}; received {text!r}") from None
        if (not math.isfinite(value) or (low is not None and (value <= low if low_open else value < low))
                or (high is not None and (value >= high if high_open else value > high))):
            raise argparse.ArgumentTypeError(f"must be {description}; received {text}")
        return value

    parse.__name__ = description
    return parse


def host_port(text):
    """An argparse `type`: HOST:PORT with a host name or address and a port in 1 .. 65535 (what a
    URL or a gRPC target can hold), refused here rather than deep in http.client or gRPC."""
    message = f"must be HOST:PORT (e.g. localhost:8501, a port in 1 .. 65535); received {text!r}"
    try:
        parts = urllib.parse.urlsplit(f"//{text}")
        port = parts.port
    except ValueError:
        raise argparse.ArgumentTypeError(message) from None
    if (not parts.hostname or port is None or not 1 <= port <= 65535 or parts.path or parts.query
            or parts.fragment or "@" in parts.netloc or any(c.isspace() or not c.isprintable() for c in text)):
        raise argparse.ArgumentTypeError(message)
    return text


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows `(default: X)` only where it says something: not for on/off flags (`--no-residual`
    would read "default: True") nor for defaults of None (their help says what happens)."""

    def _get_help_string(self, action):
        if action.nargs == 0 or action.default is None:
            return action.help
        return super()._get_help_string(action)


class ExampleHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """`HelpFormatter` for an app whose description holds example commands: the description is
    printed as written (argparse would reflow an indented command into the paragraph)."""


def file_in_the_way(path):
    """The first existing path of `path` and its parents, when it is not a directory; else None."""
    for place in (path, *path.parents):
        if place.exists():
            return None if place.is_dir() else place
    return None


def check_directory(path, flag):
    """Refuse a directory argument that names a file or lies under one, before anything is loaded
    (the directory itself need not exist yet). Returns `path` as a Path."""
    path = pathlib.Path(path)
    blocking = file_in_the_way(path)
    if blocking is not None:
        where = "is a file" if blocking == path else f"is inside {blocking}, which is a file"
        raise RunError(f"{flag} {path} {where}, not a directory")
    return path


def check_output_file(path, flag):
    """Refuse an output file argument that names a directory or lies under a file, before any work
    (its missing folders are made by `make_parent_directory` when it is written). Returns a Path."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise RunError(f"{flag} {path} is a directory; give a file name")
    blocking = file_in_the_way(path.parent)
    if blocking is not None:
        raise RunError(f"{flag} {path}: cannot create its folder, {blocking} is a file")
    return path


def make_parent_directory(path, flag):
    """Create the missing folders of the output file `path`; a one-line error where that cannot be."""
    path = check_output_file(path, flag)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"{flag} {path}: cannot create its folder: {error.strerror or error}") from None
    return path


# Lines that TensorFlow, absl and TFDS print in a healthy run, which a newcomer reads as failures:
# C++ info and warning lines (oneDNN, cudart, CPU features), absl's line before its logging starts,
# the CPU-features line's continuation, CUDA probed on a machine without a GPU, and TFDS' note on
# a data folder it prepared differently. Apps drop them unless --verbose (`StartupChatterFilter`).
STARTUP_CHATTER = re.compile("|".join([
    r"[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] .*",
    r"E\d{4} [\d:.]+ +\d+ cuda_platform\.cc:\d+\] failed call to cuInit: .*",
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"To enable the following instructions: .* in other operations, rebuild TensorFlow with the appropriate "
    r"compiler flags\.",
    r"WARNING:absl:Variant folder .* has no dataset_info\.json",
]))


def is_startup_chatter(line):
    """Whether a line of standard error is one of `STARTUP_CHATTER` (not an error of the run)."""
    return STARTUP_CHATTER.fullmatch(line.rstrip("\r\n")) is not None


class StartupChatterFilter:
    """Within `with`, the process's standard error (file descriptor 2: Python's and the C++
    libraries' alike) passes through a thread that drops `STARTUP_CHATTER` lines and copies every
    other line as it comes. TF_CPP_MIN_LOG_LEVEL cannot do this: absl writes its first lines before
    it reads any setting, and a level high enough for them hides real errors too."""

    def __enter__(self):
        import threading

        sys.stderr.flush()
        self._original = os.dup(2)
        reader, writer = os.pipe()
        os.dup2(writer, 2)
        os.close(writer)
        self._thread = threading.Thread(target=self._copy, args=(reader,), daemon=True)
        self._thread.start()
        return self

    def _copy(self, reader):
        pending = b""
        while True:
            chunk = os.read(reader, 65536)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                self._write(line + b"\n")
        self._write(pending)
        os.close(reader)

    def _write(self, line):
        if line and not is_startup_chatter(line.decode("utf-8", "replace")):
            try:
                os.write(self._original, line)
            except OSError:  # standard error closed under us: nothing left to show it on
                pass

    def __exit__(self, *exc_info):
        sys.stderr.flush()
        os.dup2(self._original, 2)  # the pipe's last writer here closes: the thread reads to its end
        self._thread.join(timeout=5.0)  # a child process still holding the pipe may keep it open
        os.close(self._original)
        return False


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings about the user's data (`DataWarning`) as one `warning: ...` line; others as Python does."""
    if issubclass(category, DataWarning):
        text = f"warning: {' '.join(str(message).split())}\n"
    else:
        text = warnings.formatwarning(message, category, filename, lineno, line)
    (sys.stderr if file is None else file).write(text)


def turn_off_the_failing_remapper():
    """Under the TensorFlow backend, turn grappler's remapper off for this process: what every app
    does before it builds or loads a model (a library leaves TensorFlow's settings to its caller).

    On a CPU with oneDNN (TensorFlow's default there), wherever a graph's batch size is static (the
    training step; a scoring call on one fixed batch), the remapper fuses Conv2D + BiasAdd + Add +
    Relu where the Add is a residual sum that also feeds the next residual sum, deletes that Add
    under its second reader, and fails ("E... meta_optimizer.cc] remapper failed: INVALID_ARGUMENT:
    Mutation::Apply error: fanout '.../block2_reduce_relu_1/Relu' exist for missing node
    '.../residual1_1/Add'"). Plain `keras.layers.Conv2D` residual networks do it too, so the fault is
    TensorFlow's (2.21); a failed pass is dropped whole. Off, the same graphs run at the same speed or
    faster (measured: notes/2026-12-07-messages.md) and the error line is gone.
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.optimizer.set_experimental_options({"remapping": False})


def add_verbose_flag(parser):
    """The `--verbose` flag every app takes (read by `run_cli` before `main` parses it)."""
    parser.add_argument("--verbose", action="store_true",
                        help="also show TensorFlow's and absl's own start-up log lines (hidden by default)")


def run_cli(main, argv=None):
    """Call `main(argv)`; turn expected errors into `error: ...` on stderr and exit code 2
    (set PIXEL_KERAS_TRACEBACK=1 to see the traceback instead). Run from the command line (`argv`
    None), TensorFlow's start-up chatter is filtered out of standard error unless `--verbose` or
    PIXEL_KERAS_VERBOSE=1 (`StartupChatterFilter`)."""
    quiet = (argv is None and "--verbose" not in sys.argv[1:] and not os.environ.get("PIXEL_KERAS_VERBOSE")
             and not os.environ.get("PIXEL_KERAS_TRACEBACK"))
    if not quiet:
        return _run(main, argv)
    with StartupChatterFilter():
        return _run(main, argv)


def _run(main, argv):
    if os.environ.get("PIXEL_KERAS_TRACEBACK"):
        import keras

        keras.config.disable_traceback_filtering()
    try:
        with warnings.catch_warnings():  # `showwarning` is ours while `main` runs, Python's again after
            warnings.showwarning = _show_warning
            return main(argv)
    except ModuleNotFoundError as error:  # a module an extra installs (e.g. TensorFlow on a JAX-only install)
        line = missing_module_line(error)
        if line is None or os.environ.get("PIXEL_KERAS_TRACEBACK"):
            raise
        print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
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
