"""Which extra of pixel_keras installs which module (setup.py), so that a missing one is named
with the line that installs it: the core install is Keras and what the library imports; each
backend, and what only one of them offers, comes with an extra (README, "Install")."""

import importlib.util

# top-level module -> the extra that installs it
EXTRA_OF_MODULE = {
    "tensorflow": "tensorflow", "tensorflow_datasets": "tensorflow", "tensorboard": "tensorflow",
    "jax": "jax", "jaxlib": "jax", "torch": "torch",
    "tensorflow_probability": "benchmarks", "tf_keras": "benchmarks",
    "tensorflow_serving": "serving", "grpc": "serving",
    "matplotlib": "plots", "pillow_jxl": "ood",
}


def install_line(extra):
    """The pip command that installs `extra`."""
    return f"pip install 'pixel_keras[{extra}]'"


def missing_module_line(error):
    """One line naming the module a `ModuleNotFoundError` misses and the extra that installs it;
    None for a module that no extra of ours installs."""
    module = (getattr(error, "name", None) or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    if extra is None:
        return None
    line = f"{module} is not installed; it comes with the [{extra}] extra: {install_line(extra)}"
    if module == "tensorflow":  # Keras' default backend: another one may be what the user has
        line += " (or run on another backend: KERAS_BACKEND=jax with [jax], KERAS_BACKEND=torch with [torch])"
    return line


def install_note(module):
    """"" when `module` is installed, else "; MODULE is not installed: pip install 'pixel_keras[EXTRA]'":
    the end of a message that refuses a feature of one backend."""
    if importlib.util.find_spec(module) is not None:
        return ""
    return f"; {module} is not installed: {install_line(EXTRA_OF_MODULE[module])}"
