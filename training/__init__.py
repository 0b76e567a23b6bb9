"""The pixel_keras training application: `python -m training.run`, `.evaluate`, `.sample` from a
checkout; installed, the package is `pixel_keras_apps.training` (console scripts `pixel-keras-train`,
`-evaluate`, `-sample`). Its modules import each other relatively, and what other apps share from
the library, so that both names work."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow
