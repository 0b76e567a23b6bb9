"""The few backend-specific functions of the library, one per need where Keras has no suitable op.

Each imports its backend's package inside the function, so `import pixel_keras` needs only Keras and
the active backend (e.g. JAX with no TensorFlow installed).
"""

import keras
import numpy as np


def scan(fn, initial, xs):
    """The states of `state = fn(state, x)` for each x along the first axis of `xs`, stacked.

    `tf.scan`'s contract (states may be nested tuples; the result has the same structure, each
    tensor with a new leading axis). On TensorFlow it is `tf.scan`: the TensorFlow backend's
    `keras.ops.scan` builds a while loop without `maximum_iterations`, whose gradient XLA
    (`jit_compile=True`) refuses to compile. Elsewhere it is `keras.ops.scan`.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # only on the TensorFlow backend: the library imports without it

        return tf.scan(fn, xs, initializer=initial)

    def step(state, x):
        new_state = fn(state, x)
        return new_state, new_state

    return keras.ops.scan(step, initial, xs)[1]


def seed_argument(seed):
    """An integer `seed` (int64, `checks.check_seed`) as the tensor that `uniform` takes inside a compiled
    function: int64 on TensorFlow (the SavedModel's `seed`), JAX's raw key (uint32 [high, low]
    words: JAX has no int64 without x64 mode), an int64 tensor elsewhere."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.constant(seed, tf.int64)
    if backend == "jax":
        seed = int(seed) % 2**64
        return np.array([seed >> 32, seed & 0xFFFFFFFF], np.uint32)
    return keras.ops.convert_to_tensor(np.int64(seed))


def uniform(shape, seed):
    """float32 numbers in [0, 1) of `shape`, fixed by `seed` (stateless: one seed, one set of
    numbers on one backend): an int, a scalar integer tensor, or what `seed_argument` returns.

    TensorFlow: `tf.random.stateless_uniform` (takes the exported int64 seed tensor, in XLA too);
    JAX: `jax.random` with the seed as its key; PyTorch and others (eager loops): numpy's generator
    seeded with it (all 64 bits: torch's CPU generator keeps only 32, so 2**40 + 5 would draw as 5).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.random.stateless_uniform(shape, tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)]))
    if backend == "jax":
        import jax

        if isinstance(seed, (int, np.integer)):
            seed = seed_argument(seed)
        key = seed if len(seed.shape) == 1 else jax.random.PRNGKey(seed)
        return jax.random.uniform(key, tuple(shape), "float32")
    numbers = np.random.default_rng(int(seed) % 2**64).random(tuple(int(n) for n in shape), np.float32)
    return keras.ops.convert_to_tensor(numbers)


def model_function(model, function, signature=None, jit_compile=None):
    """`function` compiled once for `model` (it calls the model): the callable to use for a model's
    repeated work (scoring, the sampling loop), reading the model's current weights at each call.

    TensorFlow: a `tf.function` (fixed `signature`, [(shape, dtype, name)], or one that retraces
    little; XLA when `jit_compile`), which the SavedModel export can reuse. JAX: `jax.jit` of a
    stateless version (the weights an argument, so training between calls is seen). PyTorch and
    others: the function itself, without gradients on PyTorch. Arguments: numpy arrays or tensors, or
    nested lists, tuples and dicts of them.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if signature is None:
            return tf.function(function, reduce_retracing=True, jit_compile=jit_compile)
        specs = [tf.TensorSpec(shape, dtype, name=name) for shape, dtype, name in signature]
        return tf.function(function, input_signature=specs, jit_compile=jit_compile)
    if backend == "jax":
        import jax

        variables = model.variables  # not the model: a cache keyed weakly by it may hold this

        def stateless(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return function(*args)

        jitted = jax.jit(stateless)
        return lambda *args: jitted([variable.value for variable in variables], *args)

    def eager(*args):
        args = keras.tree.map_structure(  # nested arguments too (the codec passes its states back)
            lambda arg: keras.ops.convert_to_tensor(arg) if isinstance(arg, (np.ndarray, np.generic)) else arg, args)
        if backend != "torch":
            return function(*args)
        import torch

        with torch.no_grad():
            return function(*args)

    return eager
