"""Which inputs an output depends on, read off the exact Jacobian of a function at a random input.

Used by the causality tests: masks multiply weights by exact zeros, so a forbidden dependency shows
as an exactly non-zero gradient and an allowed one as a non-zero gradient almost surely.
"""

import keras
import numpy as np
from keras import ops

from pixel_keras.masks import feature_groups


def jacobian(fn, x):
    """d fn(x) / d x as a numpy array of shape fn(x).shape + x.shape, by the backend's autodiff
    (TensorFlow's GradientTape, jax.jacrev, torch.autograd.functional.jacobian)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.Variable(x)
        with tf.GradientTape() as tape:
            y = fn(x)
        return tape.jacobian(y, x).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.jacrev(fn)(x))
    if backend == "torch":
        import torch

        return torch.autograd.functional.jacobian(fn, torch.as_tensor(x)).cpu().numpy()
    raise NotImplementedError(f"No Jacobian for the {backend!r} backend in these tests.")


def dependency_map(fn, input_shape, color_channels, out_blocks=1, in_groups=None, out_groups=None, samples=4):
    """Boolean array depends[i, j, g_out, k, l, g_in]: output group g_out at pixel (i, j) has a
    non-zero gradient with respect to some input feature of group g_in at pixel (k, l), at any of
    `samples` random inputs (several, so that a ReLU that happens to be off cannot hide a path).

    Args:
        fn: maps a float tensor (samples,) + input_shape to an output (samples, H, W, F_out) or
            logits (samples, H, W, C, L), whose channel c is group c.
        input_shape: (H, W, F_in).
        color_channels: number of colour groups.
        out_blocks: blocks of the output features (4 for LSTM gates).
        in_groups, out_groups: explicit group of each input / output feature (default: contiguous).
    """
    x = np.random.default_rng(0).uniform(-1, 1, (samples,) + tuple(input_shape)).astype("float32")
    output_ranks = []

    def summed(x):
        y = fn(x)
        output_ranks.append(len(y.shape))
        if len(y.shape) == 5:  # logits: fold the levels of channel c with random weights
            y = ops.sum(ops.multiply(y, np.random.default_rng(1).normal(size=y.shape[-1]).astype("float32")), -1)
        return ops.sum(y, axis=0)  # images are independent: d y_sum / d x[b] = d y[b] / d x[b]

    gradients = np.abs(jacobian(summed, x)).max(axis=3)  # (H, W, F_out, H, W, F_in)
    if out_groups is None:  # logits: feature c is channel c; feature maps: contiguous groups
        folded = output_ranks[0] == 5
        out_features = gradients.shape[2]
        out_groups = np.arange(out_features) if folded else feature_groups(out_features, color_channels, out_blocks)
    if in_groups is None:
        in_groups = feature_groups(input_shape[2], color_channels)
    depends = np.zeros(gradients.shape[:2] + (color_channels,) + tuple(input_shape[:2]) + (color_channels,), bool)
    for g_out in range(color_channels):
        for g_in in range(color_channels):
            block = gradients[:, :, out_groups == g_out][..., in_groups == g_in]
            depends[:, :, g_out, :, :, g_in] = block.max(axis=(2, 5)) > 0
    return depends


def allowed_map(height, width, color_channels, strict):
    """allowed[i, j, g_out, k, l, g_in]: (k, l, g_in) comes before (i, j, g_out); `strict` (mask A)
    excludes g_in == g_out at the same pixel, non-strict (mask B) includes it."""
    rows, cols, groups = np.meshgrid(np.arange(height), np.arange(width), np.arange(color_channels), indexing="ij")
    position = (rows * width + cols)
    out_pos = position[:, :, :, None, None, None]
    in_pos = position[None, None, None, :, :, :]
    out_group = groups[:, :, :, None, None, None]
    in_group = groups[None, None, None, :, :, :]
    same_pixel_ok = in_group < out_group if strict else in_group <= out_group
    return (in_pos < out_pos) | ((in_pos == out_pos) & same_pixel_ok)


def assert_causal(depends, strict):
    """Fail on any dependency outside the causal context, and on an output that misses its
    nearest allowed inputs: the pixel to the left, the pixel above, and its own pixel's earlier
    colour group (or its own group when not strict)."""
    height, width, groups = depends.shape[:3]
    leaks = depends & ~allowed_map(height, width, groups, strict)
    assert not leaks.any(), f"future leaks at (i, j, g_out, k, l, g_in) = {np.argwhere(leaks)[:5].tolist()}"
    for i in range(height):
        for j in range(width):
            for g in range(groups):
                if j > 0:
                    assert depends[i, j, g, i, j - 1].any(), f"({i}, {j}, {g}) does not see the pixel to its left"
                if i > 0:
                    assert depends[i, j, g, i - 1, j].any(), f"({i}, {j}, {g}) does not see the pixel above"
                own = g - 1 if strict else g
                if own >= 0:
                    assert depends[i, j, g, i, j, own], f"({i}, {j}, {g}) does not see group {own} of its pixel"
