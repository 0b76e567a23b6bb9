"""Shared test set-up: quiet TensorFlow logs, a fixed seed for every test, and the `tensorflow`
marker: a test of a TensorFlow-only feature (tf.function tracing, XLA's jit_compile, SavedModel,
tf.data) is skipped when the tests run under another Keras backend (KERAS_BACKEND=jax or torch,
as tests/test_backends.py does)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "tensorflow: tests a TensorFlow-only feature; skipped on other backends")
    config.addinivalue_line("markers", "slow: takes more than 2 s (deselect with -m 'not slow')")


def pytest_collection_modifyitems(config, items):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"a TensorFlow-only feature; the Keras backend is {backend!r}")
    for item in items:
        if item.get_closest_marker("tensorflow"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def fixed_seed():
    keras.utils.set_random_seed(1234)
