"""The library with Keras and the active backend alone: run as a script (`KERAS_BACKEND=jax python
-m tests.backend_run`), it makes TensorFlow unimportable (`NoTensorFlow`), then builds, scores, samples (both
methods) and completes every arch and a multi-scale model, and checks seeds fix the draws; a
conditional and a multi-scale model also go through the codec.

Prints one line per model and "ok" at the end; any failure raises (a non-zero exit status).
"""

import importlib.machinery
import os
import sys

import numpy as np


class NoTensorFlow:
    """An import hook under which `import tensorflow` fails as where it is not installed.

    Not `sys.modules["tensorflow"] = None`: Keras' preprocessing layers (our `scale_pixels`
    Rescaling) test `"tensorflow" in sys.modules` and then import it, which a real machine without
    TensorFlow never does. `find_spec` answers (origin None) rather than raising, because
    torch._dynamo looks TensorFlow up with `importlib.util.find_spec` when it is imported."""

    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        raise ModuleNotFoundError(f"No module named {spec.name!r} (made unimportable by tests.backend_run)")

    def exec_module(self, module):
        raise AssertionError("not reached")


if __name__ == "__main__":
    sys.meta_path.insert(0, NoTensorFlow())


def check_model(model, image_shape, num_levels, labels=None, codec=False):
    import pixel_keras as pk

    rng = np.random.default_rng(0)
    images = rng.integers(0, num_levels, (3,) + image_shape).astype(np.int32)
    log_p = pk.log_prob(model, images, labels=labels)
    assert log_p.shape == (3,) and np.all(np.isfinite(log_p)) and np.all(log_p < 0), log_p
    bpd = pk.bits_per_dim(model, images, labels=labels)
    np.testing.assert_allclose(bpd, -log_p / (np.prod(image_shape) * np.log(2)), rtol=1e-6)
    known = np.zeros(image_shape[:2], bool)
    known[0] = True
    for method in ("fast", "plain"):
        drawn = pk.sample(model, 3, seed=7, labels=labels, method=method)
        assert drawn.shape == (3,) + image_shape and drawn.min() >= 0 and drawn.max() < num_levels, drawn
        np.testing.assert_array_equal(drawn, pk.sample(model, 3, seed=7, labels=labels, method=method))
        filled = pk.complete(model, images, known, seed=3, labels=labels, method=method)
        np.testing.assert_array_equal(filled[:, 0], images[:, 0])
    if codec:
        from pixel_keras import codec as pk_codec

        blobs = pk_codec.compress(model, images, labels=labels)
        np.testing.assert_array_equal(pk_codec.decompress(model, blobs, labels=labels), images)


def main():
    import keras

    import pixel_keras as pk

    assert "tensorflow" not in sys.modules, "TensorFlow was imported"
    backend = keras.backend.backend()
    for arch in pk.arch_names():
        model = pk.build_model(arch, (3, 3, 3), 4, num_layers=1, hidden=6)
        check_model(model, (3, 3, 3), 4)
        print(backend, arch, "ok", flush=True)
    model = pk.build_model("pixelcnn", (2, 3, 1), 2, num_layers=1, hidden=4, num_classes=3)
    check_model(model, (2, 3, 1), 2, labels=np.array([0, 2, 1]), codec=True)
    print(backend, "conditional pixelcnn ok", flush=True)
    model = pk.build_multiscale_model("row_lstm", (4, 4, 1), 3, num_layers=1, hidden=4)
    check_model(model, (4, 4, 1), 3, codec=True)
    print(backend, "multiscale row_lstm ok", flush=True)
    assert "tensorflow" not in sys.modules, "TensorFlow was imported"
    print("ok")


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "jax")
    main()
