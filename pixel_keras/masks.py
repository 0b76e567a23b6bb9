"""Autoregressive connectivity masks for convolution kernels.

A pixel may only see pixels before it in raster order, and inside a pixel the colour channels are
ordered R, G, B. Features are split into `color_channels` contiguous groups; at the kernel centre an
output group ``c`` connects to input groups ``< c`` (mask "A") or ``<= c`` (mask "B").

Mask "V" (the Gated PixelCNN's vertical stack) keeps every kernel row up to and including the centre
row, whole, with no colour groups: its output at row i sees rows <= i, and only reaches a prediction
after a shift down by one row, where all of it is the past.
"""

import numpy as np

MASK_TYPES = ("A", "B", "V")


def feature_groups(num_features, color_channels, blocks=1):
    """Colour group (0 .. color_channels-1) of each of `num_features` features.

    The features form `blocks` equal blocks (e.g. the four gates of an LSTM) and each block is split
    into `color_channels` contiguous groups, the first group belonging to R.

    Args:
        num_features: number of features in the map.
        color_channels: number of colour groups (1 for grayscale, 3 for RGB).
        blocks: number of equal blocks the features form.

    Returns:
        An int array of shape (num_features,).
    """
    if num_features % blocks:
        raise ValueError(
            f"Expected the number of features to be a multiple of blocks={blocks}. "
            f"Received num_features={num_features}."
        )
    per_block = num_features // blocks
    if per_block < color_channels:
        raise ValueError(
            f"Expected at least one feature per colour group ({color_channels} groups) in each of "
            f"{blocks} block(s). Received num_features={num_features}."
        )
    return (np.arange(num_features) % per_block) * color_channels // per_block


def causal_mask(kernel_size, in_features, out_features, mask_type, color_channels=1, out_blocks=1):
    """0/1 mask of shape kernel_size + (in_features, out_features) for a causal convolution.

    Args:
        kernel_size: (height, width), both odd; the centre is the current pixel.
        in_features: input features of the convolution (colour groups contiguous).
        out_features: output features (colour groups contiguous inside each of `out_blocks`).
        mask_type: "A" (the centre pixel's group does not see itself), "B" (it does) or "V" (rows up
            to the centre row, whole; colour groups play no part).
        color_channels: number of colour groups.
        out_blocks: number of equal blocks of output features, each grouped on its own.

    Returns:
        A float32 numpy array.
    """
    if mask_type not in MASK_TYPES:
        raise ValueError(f"Expected mask_type to be one of {MASK_TYPES}. Received mask_type={mask_type!r}.")
    height, width = kernel_size
    centre_row, centre_col = height // 2, width // 2
    mask = np.zeros((height, width, in_features, out_features), dtype=np.float32)
    if mask_type == "V":
        mask[: centre_row + 1] = 1.0
        return mask
    mask[:centre_row] = 1.0
    mask[centre_row, :centre_col] = 1.0
    in_group = feature_groups(in_features, color_channels)[:, None]
    out_group = feature_groups(out_features, color_channels, out_blocks)[None, :]
    allowed = in_group < out_group if mask_type == "A" else in_group <= out_group
    mask[centre_row, centre_col] = allowed.astype(np.float32)
    return mask
