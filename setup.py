"""pixel_keras: PixelCNN / PixelRNN autoregressive image models in Keras 3 (TensorFlow backend)."""

from setuptools import find_packages, setup

# The apps keep the checkout's layout (`python -m training.run`, `python -m export.saved_model`) but
# install under one name of ours, so that pip claims no generic top-level `training` or `export`.
APPS = {"pixel_keras_apps.training": "training", "pixel_keras_apps.export": "export"}

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
    ]},
    # Versions tested together on Python 3.11 (CPU). `tensorflow` (not tensorflow-cpu): tf-keras,
    # which tensorflow-probability needs, depends on the full wheel, and both wheels must not mix.
    install_requires=[
        "tensorflow==2.21.0",
        "keras==3.15.1",
        "tensorflow-datasets==4.9.10",
        # TFDS 4.9.10 imports it to download and prepare any dataset but declares it only for Python < 3.9.
        "importlib_resources==7.1.0",
        "tensorflow-probability==0.25.0",
        "tf-keras==2.21.0",
        "tensorboard==2.21.0",
        "numpy>=1.26,<3",
        "pillow==13.0.0",
        "scikit-learn==1.9.1",
        "constriction==0.5.0",  # pixel_keras.codec's range coder (its bitstream is this version's)
    ],
    extras_require={
        "serving": ["tensorflow-serving-api==2.21.0"],  # export/client.py over gRPC
        "plots": ["matplotlib==3.11.2"],  # training.ood's histograms (imported lazily)
        # training.ood: histograms and the JPEG XL input complexity (both imported lazily)
        "ood": ["matplotlib==3.11.2", "pillow-jxl-plugin==1.3.8"],
        # Other Keras backends (KERAS_BACKEND=jax / torch); CPU wheels. `dev` has JAX: CI runs the
        # backend-sensitive tests under it (tests/test_backends.py). torch's PyPI wheel pulls CUDA.
        "jax": ["jax==0.10.2", "jaxlib==0.10.2"],
        "torch": ["torch==2.13.0"],
        "dev": ["pytest==9.2.0", "scipy>=1.11", "tensorflow-serving-api==2.21.0", "jax==0.10.2", "jaxlib==0.10.2",
                "matplotlib==3.11.2", "pillow-jxl-plugin==1.3.8",
                "import-linter==2.17"],  # tests/test_layering.py: the layers contract in pyproject.toml
    },
)
