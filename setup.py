"""pixel_keras: PixelCNN / PixelRNN autoregressive image models in Keras 3 (TensorFlow backend)."""

from setuptools import find_packages, setup

# The apps keep the checkout's layout (`python -m training.run`, `python -m export.saved_model`) but
# install under one name of ours, so that pip claims no generic top-level `training` or `export`.
APPS = {"pixel_keras_apps.training": "training", "pixel_keras_apps.export": "export"}

# What the library itself imports, with Keras 3 (which needs one backend: an extra below).
CORE = [
    "keras>=3.15.1,<4",
    "numpy>=1.26,<3",
    "pillow>=13.0.0,<14",
    "scikit-learn>=1.9.1,<2",
    "constriction==0.5.0",  # pixel_keras.codec's range coder: its bitstream is this version's
]
# The default backend and what comes with it: tf.data input, the SavedModel export, tf.distribute,
# TFDS datasets, TensorBoard (the README's quick start; .ci/setup installs it).
TENSORFLOW = [
    "tensorflow>=2.21.0,<3",
    "tensorflow-datasets>=4.9.10,<5",
    # TFDS 4.9.10 imports it to download and prepare any dataset but declares it only for Python < 3.9.
    "importlib_resources>=7.1.0",
    "tensorboard>=2.21.0,<3",
]
JAX = ["jax>=0.10.2,<1", "jaxlib>=0.10.2,<1"]  # CPU wheels; a GPU machine brings its own jax
TORCH = ["torch>=2.13.0,<3"]  # PyPI's wheel pulls CUDA
# benchmarks/peer.py: TensorFlow Probability's PixelCNN, the peer we measure against. `tensorflow`
# (not tensorflow-cpu): tf-keras, which TFP needs, depends on the full wheel, and both must not mix.
BENCHMARKS = TENSORFLOW + ["tensorflow-probability>=0.25.0,<1", "tf-keras>=2.21.0,<3"]
SERVING = ["tensorflow-serving-api>=2.21.0,<3"]  # export/client.py over gRPC
PLOTS = ["matplotlib>=3.11.2,<4"]  # training.ood's histograms (imported lazily)
OOD = PLOTS + ["pillow-jxl-plugin>=1.3.8,<2"]  # training.ood: histograms and the JPEG XL input complexity
# Everything the test suite runs (CI: with constraints.txt): TensorFlow, JAX (the backend-sensitive
# tests run under it too), serving, the OOD extras, the TFP peer.
DEV = BENCHMARKS + JAX + SERVING + OOD + ["pytest>=9.2.0,<10", "scipy>=1.11", "import-linter>=2.17,<3"]

setup(
    name="pixel_keras",
    version="0.1.0",
    description="PixelCNN, Row LSTM and Diagonal BiLSTM PixelRNNs in Keras 3",
    python_requires=">=3.10",
    packages=find_packages(include=["pixel_keras", "pixel_keras.*"]) + list(APPS),
    package_dir=APPS,
    # The shipped models (pixel_keras.pretrained): each NAME.keras with its record NAME.json.
    package_data={"pixel_keras": ["pretrained_models/*.keras", "pretrained_models/*.json"]},
    entry_points={"console_scripts": [
        "pixel-keras-train = pixel_keras_apps.training.console_scripts:train",
        "pixel-keras-evaluate = pixel_keras_apps.training.console_scripts:evaluate",
        "pixel-keras-sample = pixel_keras_apps.training.console_scripts:sample",
        "pixel-keras-export = pixel_keras_apps.export.console_scripts:export",
        "pixel-keras-client = pixel_keras_apps.export.console_scripts:client",
        "pixel-keras-ood = pixel_keras_apps.training.console_scripts:ood",
        "pixel-keras-codec = pixel_keras.codec.__main__:run",
        "pixel-keras-fetch-mnist = pixel_keras.fetch_mnist:run",
    ]},
    # Ranges: lower bounds the versions tested (constraints.txt holds the exact tested set, which
    # .ci/setup installs), upper bounds below the next major. One exact pin: `constriction`, whose
    # bitstream is that version's (the stored codec blobs in tests/data guard it).
    install_requires=CORE,
    extras_require={
        "tensorflow": TENSORFLOW,
        "jax": JAX,
        "torch": TORCH,
        "benchmarks": BENCHMARKS,
        "serving": SERVING,
        "plots": PLOTS,
        "ood": OOD,
        "dev": DEV,
    },
)
