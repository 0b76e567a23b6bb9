"""What the normalisation tests share: every image of a tiny case, and random weights everywhere;
what the tests that enumerate archs share: the registered archs that take conditioning."""

import itertools

import numpy as np

import pixel_keras as pk


def all_images(image_shape, num_levels):
    """Every integer image of `image_shape` with values in [0, num_levels), int32 (L**(HWC), H, W, C)."""
    values = itertools.product(range(num_levels), repeat=int(np.prod(image_shape)))
    return np.array(list(values), dtype=np.int32).reshape((-1,) + tuple(image_shape))


def randomise_weights(model, scale=0.5, seed=3):
    """Random values for every weight (biases and class vectors included), so that no path of the
    model hides behind a weight initialised to zero."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(0, scale, weight.shape).astype("float32"))


def conditional_archs():
    """The registered archs that take conditioning (labels, a multi-scale map): the conditional and
    multi-scale tests enumerate these, the others `pk.arch_names()`."""
    return tuple(name for name in pk.arch_names() if pk.get_arch(name).conditioning is not None)
