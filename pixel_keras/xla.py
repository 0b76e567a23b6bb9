"""When to compile with XLA by default."""

import tensorflow as tf


def default_jit_compile():
    """XLA by default only where a GPU is present.

    Every model compiles with XLA (tests check it), but on the CPU, XLA's code for the recurrent
    scans is several times slower than TensorFlow's own kernels (BUILD_NOTES.md has the figures).
    """
    return bool(tf.config.list_physical_devices("GPU"))
