"""Export trained models as SavedModels for TensorFlow Serving, and a client for them.

From a checkout `python -m export.saved_model` / `export.client`; installed, the package is
`pixel_keras_apps.export` (console scripts `pixel-keras-export`, `pixel-keras-client`)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow
