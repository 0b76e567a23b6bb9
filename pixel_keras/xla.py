"""When to compile with XLA by default."""

import keras


def default_jit_compile():
    """XLA by default only where TensorFlow sees a GPU (`jit_compile` is a `tf.function` option).

    Every model compiles with XLA (tests check it), but on the CPU, XLA's code for the recurrent
    scans is several times slower than TensorFlow's own kernels (BUILD_NOTES.md has the figures).
    Other backends: False (JAX compiles with XLA anyway; PyTorch runs eagerly).
    """
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))
