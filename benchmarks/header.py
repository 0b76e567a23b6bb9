"""The first lines every benchmark prints: the exact command, the date and the machine."""

import datetime
import os
import platform
import sys


def print_header(module, argv, details):
    """Print `command: python -m <module> ...` and `date: ..., machine: ...; <details>`.

    Args:
        module: the benchmark's module name (`benchmarks.sampling`).
        argv: the arguments `main` received (None: the command line's).
        details: the run's settings, appended to the machine line.
    """
    import tensorflow as tf

    print(f"command: python -m {module} {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip())
    gpus = len(tf.config.list_physical_devices("GPU"))
    print(f"date: {datetime.date.today()}, machine: {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{gpus or 'no'} GPU(s), TensorFlow {tf.__version__}; {details}")
