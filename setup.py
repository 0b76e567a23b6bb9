"""pixel_keras: PixelCNN / PixelRNN autoregressive image models in Keras 3 (TensorFlow backend)."""

from setuptools import find_packages, setup

setup(
    name="pixel_keras",
    version="0.1.0",
    description="PixelCNN, Row LSTM and Diagonal BiLSTM PixelRNNs in Keras 3",
    python_requires=">=3.10",
    packages=find_packages(include=["pixel_keras*", "training*", "export*"]),
    # Versions tested together on Python 3.11 (CPU). `tensorflow` (not tensorflow-cpu): tf-keras,
    # which tensorflow-probability needs, depends on the full wheel, and both wheels must not mix.
    install_requires=[
        "tensorflow==2.21.0",
        "keras==3.15.1",
        "tensorflow-datasets==4.9.10",
        "tensorflow-probability==0.25.0",
        "tf-keras==2.21.0",
        "tensorboard==2.21.0",
        "numpy>=1.26,<3",
        "pillow==13.0.0",
        "scikit-learn==1.9.1",
    ],
    extras_require={
        "serving": ["tensorflow-serving-api==2.21.0"],  # export/client.py over gRPC
        "dev": ["pytest==9.2.0", "scipy>=1.11", "tensorflow-serving-api==2.21.0"],
    },
)
