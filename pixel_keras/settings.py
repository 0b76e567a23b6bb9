"""Names and defaults of training (optimizers, schedules, learning rates), without Keras: the apps
check and show them without importing TensorFlow; `pixel_keras.fitting` uses them."""

import warnings

from pixel_keras import archs
from pixel_keras.deprecation import no_attribute

OPTIMIZERS = ("rmsprop", "adam")  # the paper's, PixelCNN++'s
LR_SCHEDULES = ("constant", "cosine")
# Learning rate when none is given, per optimizer. Adam's 2e-3 by measurement (BUILD_NOTES.md, issue
# 15: better than 1e-3 at 3 and 20 Fashion-MNIST minutes); RMSProp keeps the 1e-3 it always had.
DEFAULT_LEARNING_RATES = {"rmsprop": 1e-3, "adam": 2e-3}


def __getattr__(name):
    if name == "ARCHS":  # the built-ins, now `archs.BUILTIN_NAMES`; `arch_names()` lists every registered one
        return archs_deprecated(__name__)
    raise no_attribute(__name__, name)


def archs_deprecated(module):
    """`BUILTIN_NAMES`, warning that `module`.ARCHS is deprecated (CHANGELOG.md)."""
    warnings.warn(f"{module}.ARCHS is deprecated: use pixel_keras.arch_names() (every registered arch) or "
                  "pixel_keras.archs.BUILTIN_NAMES (the old name goes in the next release)", DeprecationWarning,
                  stacklevel=3)
    return archs.BUILTIN_NAMES
