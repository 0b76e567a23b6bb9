"""`MaskedConv2D`: a `Conv2D` whose kernel is multiplied by a constant causal mask."""

import keras
from keras import ops

from pixel_keras.masks import MASK_TYPES, causal_mask

# Conv2D arguments a causal convolution cannot change: the output at (i, j) predicts input (i, j).
_FIXED_CONV_ARGS = ("padding", "strides", "dilation_rate", "groups", "data_format")


@keras.saving.register_keras_serializable(package="pixel_keras")
class MaskedConv2D(keras.layers.Conv2D):
    """2-D convolution that only sees the past in raster order and colour-channel order.

    The stored kernel is left untouched; the forward pass reads it through the `kernel` property,
    which returns the kernel times a constant 0/1 mask built once in `build`. Padding is "same" and
    strides are 1 so that output pixel (i, j) is the prediction for input pixel (i, j).

    Args:
        filters: number of output features.
        kernel_size: int or (height, width); both odd.
        mask_type: "A" for the first layer (a pixel's colour group does not see itself) or "B" for
            later layers (it does).
        color_channels: number of colour groups of the image (1 grayscale, 3 RGB); input and output
            features are split into that many contiguous groups.
        output_blocks: number of equal blocks of output features that are each split into colour
            groups on their own (4 for the gates of an LSTM input-to-state convolution).
        **kwargs: other `keras.layers.Conv2D` arguments (initializers, regularizers, `use_bias`, ...).
    """

    def __init__(self, filters, kernel_size, mask_type="B", color_channels=1, output_blocks=1, **kwargs):
        for fixed in _FIXED_CONV_ARGS:
            if fixed in kwargs:
                raise ValueError(
                    "MaskedConv2D sets padding='same', stride 1, no dilation, one group and "
                    f"channels_last itself. Received {fixed}={kwargs[fixed]!r}."
                )
        super().__init__(filters, kernel_size, padding="same", **kwargs)
        if any(size % 2 == 0 for size in self.kernel_size):
            raise ValueError(f"Expected an odd kernel_size. Received kernel_size={self.kernel_size}.")
        if mask_type not in MASK_TYPES:
            raise ValueError(f"Expected mask_type to be one of {MASK_TYPES}. Received mask_type={mask_type!r}.")
        if not isinstance(color_channels, int) or color_channels < 1:
            raise ValueError(f"Expected a positive integer color_channels. Received color_channels={color_channels!r}.")
        if not isinstance(output_blocks, int) or output_blocks < 1 or filters % output_blocks:
            raise ValueError(
                "Expected output_blocks to be a positive integer dividing filters. "
                f"Received output_blocks={output_blocks!r}, filters={filters}."
            )
        self.mask_type = mask_type
        self.color_channels = color_channels
        self.output_blocks = output_blocks
        self.mask = None

    def build(self, input_shape):
        super().build(input_shape)
        self.mask = causal_mask(
            self.kernel_size, input_shape[-1], self.filters, self.mask_type,
            self.color_channels, self.output_blocks,
        )

    @property
    def kernel(self):
        # In the compute dtype even outside `__call__`'s autocast scope (the incremental sampler
        # reads it directly): a float32 variable next to bfloat16 activations is a dtype error.
        return ops.multiply(ops.cast(super().kernel, self.compute_dtype), ops.cast(self.mask, self.compute_dtype))

    def get_config(self):
        config = super().get_config()
        for fixed in _FIXED_CONV_ARGS:
            config.pop(fixed, None)
        config.update(
            mask_type=self.mask_type,
            color_channels=self.color_channels,
            output_blocks=self.output_blocks,
        )
        return config
