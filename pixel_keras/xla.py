"""When to compile with XLA by default."""

import keras


def default_jit_compile():
    """The `jit_compile` to use when the user did not choose one.

    TensorFlow: XLA only where TensorFlow sees a GPU. Every model compiles with XLA (tests check
    it), but on the CPU, XLA's code for the recurrent scans is several times slower than
    TensorFlow's own kernels (BUILD_NOTES.md has the figures). Other backends: Keras' own "auto"
    (JAX compiles with XLA anyway, PyTorch runs eagerly; False would make JAX's train step eager).
    """
    if keras.backend.backend() != "tensorflow":
        return "auto"
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))
