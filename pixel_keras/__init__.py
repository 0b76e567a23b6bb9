"""pixel_keras: PixelCNN and PixelRNN autoregressive image models in Keras 3.

The public names load on first use (PEP 562), so that a program importing only Keras-free parts
(`pixel_keras.cli`: the apps' `--help`) does not import Keras and TensorFlow. The first use of any
of them, or Keras being imported (before or after `import pixel_keras`), loads them all, which
registers every layer and loss of ours with Keras (what `keras.models.load_model` of our .keras
files needs): `import pixel_keras; import keras; keras.models.load_model(path)` keeps working.
"""

import importlib
import importlib.abc
import importlib.util
import sys

# name -> module that defines it (a module's own name: the submodule itself)
_PUBLIC = {
    "ARCHS": "pixel_keras.models", "build_model": "pixel_keras.models",
    # the architecture registry (Keras-free: `from pixel_keras.archs import arch_names` loads no Keras)
    "Arch": "pixel_keras.archs", "BlockSpec": "pixel_keras.archs", "arch_names": "pixel_keras.archs",
    "get_arch": "pixel_keras.archs", "register_arch": "pixel_keras.archs", "unregister_arch": "pixel_keras.archs",
    # the head registry (Keras-free too)
    "Head": "pixel_keras.head_registry", "ObservedView": "pixel_keras.head_registry",
    "get_head": "pixel_keras.head_registry", "head_names": "pixel_keras.head_registry",
    "register_head": "pixel_keras.head_registry", "unregister_head": "pixel_keras.head_registry",
    "NegativeLogLikelihood": "pixel_keras.likelihood", "bits_per_dim": "pixel_keras.likelihood",
    "log_prob": "pixel_keras.likelihood",
    "build_multiscale_model": "pixel_keras.multiscale",
    "Sampler": "pixel_keras.sampling", "complete": "pixel_keras.sampling", "sample": "pixel_keras.sampling",
    "layers": "pixel_keras.layers",
    "load_pretrained": "pixel_keras.pretrained", "pretrained_names": "pixel_keras.pretrained",
    "fitting": "pixel_keras.fitting",  # pk.fitting.training_view: the mixture head's fast training loss
    "ood": "pixel_keras.ood",  # out-of-distribution scores and their AUROC / AUPRC / FPR@95
}

__all__ = sorted(_PUBLIC)


_loading = False


def load_all():
    """Import every public name (and so register all our Keras objects); idempotent."""
    global _loading
    if _loading:  # Keras imported by one of our modules while they load (see `_LoadWithKeras`)
        return
    _loading = True
    try:
        for name, module_name in _PUBLIC.items():
            module = importlib.import_module(module_name)
            globals()[name] = module if module_name.endswith(f".{name}") else getattr(module, name)
    finally:
        _loading = False


class _LoadWithKeras(importlib.abc.MetaPathFinder):
    """Runs `load_all` once Keras is imported: a program that imports us first and then loads a
    .keras file with Keras alone finds our objects registered.

    Where Keras is first imported by one of our submodules (a program whose first import is e.g.
    `from pixel_keras.layers import MaskedConv2D`), loading everything at that moment would import
    modules that need the half-initialised submodule (a circular import): then `load_all` waits until
    the outermost of our submodules being imported has finished."""

    def __init__(self):
        self.depth, self.pending, self.finding = 0, False, False

    def find_spec(self, fullname, path=None, target=None):
        if self.finding or not (fullname == "keras" or fullname.startswith(__name__ + ".")):
            return None
        self.finding = True  # importlib.util.find_spec asks the finders again, this one included
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self.finding = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        execute = spec.loader.exec_module
        spec.loader.exec_module = self._keras(execute) if fullname == "keras" else self._ours(execute)
        return spec

    def _keras(self, execute):
        def exec_module(module):
            execute(module)
            if self.depth:
                self.pending = True
            else:
                self._load()
        return exec_module

    def _ours(self, execute):
        def exec_module(module):
            self.depth += 1
            try:
                execute(module)
            finally:
                self.depth -= 1
            if not self.depth and self.pending:
                self._load()
        return exec_module

    def _load(self):
        self.pending = False
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        load_all()


def __getattr__(name):
    if name in _PUBLIC:
        load_all()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))


if "keras" in sys.modules:  # Keras is loaded already: nothing to save, and its loader needs our objects
    load_all()
else:
    sys.meta_path.insert(0, _LoadWithKeras())
