"""The first lines every benchmark prints: the exact command, the date and the machine."""

import datetime
import os
import platform
import subprocess
import sys

# Run in a child process under a non-TensorFlow backend: JAX reserves most of a GPU's memory when it
# first lists its devices, which the benchmark's own worker processes then could not have.
_DEVICE_QUERIES = {
    "jax": "import jax; print(f'JAX {jax.__version__}|' + ','.join(d.device_kind for d in jax.devices() "
           "if d.platform != 'cpu'))",
    "torch": "import torch; print(f'PyTorch {torch.__version__}|' + ','.join(torch.cuda.get_device_name(i) "
             "for i in range(torch.cuda.device_count())))",
}


def machine():
    """(framework and version, accelerator names) of the active Keras backend; imports TensorFlow
    only when it is the backend, so the benchmarks run where it is not installed."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        names = [tf.config.experimental.get_device_details(gpu).get("device_name", "GPU") for gpu in gpus]
        return f"TensorFlow {tf.__version__}", names
    if backend not in _DEVICE_QUERIES:
        return f"{backend} (devices unknown)", []
    done = subprocess.run([sys.executable, "-c", _DEVICE_QUERIES[backend]], capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return f"{backend} (devices unknown)", []
    framework, _, names = lines[-1].partition("|")
    return framework, [name for name in names.split(",") if name]


def print_header(module, argv, details):
    """Print `command: python -m <module> ...` and `date: ..., machine: ...; <details>`.

    Args:
        module: the benchmark's module name (`benchmarks.sampling`).
        argv: the arguments `main` received (None: the command line's).
        details: the run's settings, appended to the machine line.
    """
    import keras

    print(f"command: python -m {module} {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip())
    framework, accelerators = machine()
    gpus = f"{len(accelerators)} GPU(s) ({', '.join(sorted(set(accelerators)))})" if accelerators else "no GPU(s)"
    print(f"date: {datetime.date.today()}, machine: {platform.machine()}, {os.cpu_count()} CPUs, {gpus}, "
          f"Keras {keras.__version__} on {framework}; {details}")


def runnable(specs, defaults):
    """`specs` without the TFP peer where TensorFlow Probability cannot be imported, when they are
    the `defaults` (a machine with JAX and no TensorFlow runs the default table of ours); a peer
    asked for by name is kept, so its worker's error says what is missing."""
    import importlib.util

    from benchmarks.contenders import PEER, parse_spec

    if list(specs) != list(defaults):
        return list(specs)
    try:
        found = importlib.util.find_spec("tensorflow_probability") is not None
        found = found and importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        found = False
    if found:
        return list(specs)
    print(f"(the {PEER} contender is left out: it needs TensorFlow Probability, which is not installed)")
    return [spec for spec in specs if parse_spec(spec)[0] != PEER]
