"""Names and defaults of the models and their training (archs, optimizers, schedules, learning
rates), without Keras: the apps check and show them without importing TensorFlow.
`pixel_keras.models` and `pixel_keras.fitting` use them (and re-export them, where they always were)."""

from pixel_keras.archs import BUILTIN_NAMES

# The built-in archs (`pixel_keras.arch_names()` lists them and any a user registered).
ARCHS = BUILTIN_NAMES

OPTIMIZERS = ("rmsprop", "adam")  # the paper's, PixelCNN++'s
LR_SCHEDULES = ("constant", "cosine")
# Learning rate when none is given, per optimizer. Adam's 2e-3 by measurement (BUILD_NOTES.md, issue
# 15: better than 1e-3 at 3 and 20 Fashion-MNIST minutes); RMSProp keeps the 1e-3 it always had.
DEFAULT_LEARNING_RATES = {"rmsprop": 1e-3, "adam": 2e-3}
