"""pixel_keras: PixelCNN and PixelRNN autoregressive image models in Keras 3.

The public names load on first use (PEP 562), so that a program importing only Keras-free parts
(`pixel_keras.archs`, `pixel_keras.cli`: the apps' `--help`) does not import Keras and TensorFlow.
Importing pixel_keras changes nothing outside it (no import hooks). To load one of our `.keras`
files use `pk.load_model(path)`; for a plain `keras.models.load_model(path)`, first
`import pixel_keras.saving`, which registers every layer and loss of ours with Keras.
"""

import importlib

from pixel_keras.deprecation import no_attribute

# name -> module that defines it (a module's own name: the submodule itself)
_PUBLIC = {
    "build_model": "pixel_keras.models",
    # the architecture registry (Keras-free: `from pixel_keras.archs import arch_names` loads no Keras)
    "Arch": "pixel_keras.archs", "BlockSpec": "pixel_keras.archs", "arch_names": "pixel_keras.archs",
    "get_arch": "pixel_keras.archs", "register_arch": "pixel_keras.archs", "unregister_arch": "pixel_keras.archs",
    # the head registry (Keras-free too)
    "Head": "pixel_keras.head_registry", "get_head": "pixel_keras.head_registry",
    "head_names": "pixel_keras.head_registry", "register_head": "pixel_keras.head_registry",
    "unregister_head": "pixel_keras.head_registry",
    "ObservedView": "pixel_keras.heads",
    "NegativeLogLikelihood": "pixel_keras.losses",
    "bits_per_dim": "pixel_keras.likelihood", "log_prob": "pixel_keras.likelihood",
    "build_multiscale_model": "pixel_keras.multiscale",
    "Sampler": "pixel_keras.sampling", "complete": "pixel_keras.sampling", "sample": "pixel_keras.sampling",
    "layers": "pixel_keras.layers",
    "load_model": "pixel_keras.io",
    "load_pretrained": "pixel_keras.pretrained", "pretrained_names": "pixel_keras.pretrained",
    "fitting": "pixel_keras.fitting",  # pk.fitting.training_view: the mixture head's fast training loss
    "ood": "pixel_keras.ood",  # out-of-distribution scores and their AUROC / AUPRC / FPR@95
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        module_name = _PUBLIC[name]
        module = importlib.import_module(module_name)
        value = module if module_name.endswith(f".{name}") else getattr(module, name)
        globals()[name] = value
        return value
    if name == "ARCHS":  # deprecated: the built-ins (CHANGELOG.md); `arch_names()` lists every registered arch
        from pixel_keras import settings

        return settings.archs_deprecated(__name__)
    if name == "load_all":  # deprecated: registered our Keras objects; now `import pixel_keras.saving`
        return _load_all
    raise no_attribute(__name__, name)


def _load_all():
    """Deprecated (CHANGELOG.md): `import pixel_keras.saving` registers our Keras objects."""
    import warnings

    warnings.warn("pixel_keras.load_all() is deprecated: `import pixel_keras.saving` registers our Keras objects, "
                  "and pixel_keras.load_model(path) loads our files (the old name goes in the next release)",
                  DeprecationWarning, stacklevel=2)
    importlib.import_module("pixel_keras.saving")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
