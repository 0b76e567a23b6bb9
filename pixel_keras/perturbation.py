"""Input perturbation for the background model of a likelihood ratio (Ren et al., NeurIPS 2019):
each sub-pixel replaced, with probability `rate`, by a level drawn uniformly from all levels.

One numpy function for every input path of the training app (numpy batches and tf.data), seeded
by (seed, step): a resumed run perturbs each batch as an uninterrupted one would have.
"""

import numbers

import numpy as np

# Mixed into the seed so that the perturbation's draws are not the batch order's (pixel_keras.batching).
_STREAM = 0x70657274  # "pert"


def check_perturb_rate(rate):
    """The rate as a float in [0, 1); ValueError naming it otherwise."""
    if not isinstance(rate, numbers.Real) or isinstance(rate, bool) or not 0.0 <= rate < 1.0:
        raise ValueError(f"Expected a perturbation rate in [0, 1). Received rate={rate!r}.")
    return float(rate)


def perturb(images, rate, num_levels, seed, step):
    """`images` (integer, any shape) with each value replaced, with probability `rate`, by a uniform
    draw from [0, num_levels): the same output for the same (seed, step) and input. Rate 0: unchanged."""
    images = np.asarray(images)
    if check_perturb_rate(rate) == 0.0:
        return images
    rng = np.random.default_rng([int(seed), int(step), _STREAM])
    replaced = rng.random(images.shape) < rate
    levels = rng.integers(0, num_levels, images.shape, dtype=np.int64).astype(images.dtype)
    return np.where(replaced, levels, images)
