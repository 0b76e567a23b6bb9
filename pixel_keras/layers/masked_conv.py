"""`MaskedConv2D`: a `Conv2D` whose kernel is multiplied by a constant causal mask."""

import keras
import numpy as np
from keras import ops

from pixel_keras.layers.incremental_step import PIXEL, ROW, IncrementalStep, in_compute_dtype, shift_rows_up, single_stage
from pixel_keras.masks import MASK_TYPES, causal_mask, feature_groups

# Conv2D arguments a causal convolution cannot change: the output at (i, j) predicts input (i, j).
_FIXED_CONV_ARGS = ("padding", "strides", "dilation_rate", "groups", "data_format")


@keras.saving.register_keras_serializable(package="pixel_keras")
class MaskedConv2D(IncrementalStep, keras.layers.Conv2D):
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

    Incremental step (`pixel_keras.layers.incremental_step`): the input's rows r - k // 2 .. r (the
    rows the mask reads) are kept in a window (batch, k // 2 + 1, W + k - 1, features), zero-padded
    left and right; the output at a pixel is the patch around it times the masked kernel. A mask
    that reads the current row right of the pixel (mask V) gives a ROW output, computed once the
    row is final.
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

    @property
    def kernel_variable(self):
        """The stored kernel variable, unmasked (what `kernel` multiplies by the mask)."""
        return super().kernel

    @property
    def conditioning_units(self):
        """Features of the conditioning bias this layer takes: one per output feature."""
        return self.filters

    def call(self, inputs, conditioning=None):
        """The masked convolution, plus an optional `conditioning` bias added to its output: per
        image (batch, 1, 1, filters) or per pixel (batch, H, W, filters)."""
        outputs = super().call(inputs)
        return outputs if conditioning is None else ops.add(outputs, conditioning)

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

    # Incremental step (the protocol of pixel_keras.layers.incremental_step).

    @property
    def _rows_above(self):
        return self.kernel_size[0] // 2

    def step_reads_row_right(self):
        """True when the mask reads the current row right of the pixel: the output is per row."""
        return bool(np.asarray(self.mask)[self._rows_above, self.kernel_size[1] // 2 + 1:].any())

    def step_ignores_last_channel(self, channels):
        """True when the output at a pixel does not read that pixel's last colour group (mask A, V):
        then what the model computes at a pixel is final before its last value is drawn."""
        groups = feature_groups(np.shape(self.mask)[2], channels)
        centre = np.asarray(self.mask)[self._rows_above, self.kernel_size[1] // 2]
        return not centre[groups == channels - 1].any()

    def step_stages(self, input_stages):
        (stage,) = single_stage(self, input_stages)
        if stage != PIXEL or np.asarray(self.mask)[self._rows_above + 1:].any():
            raise NotImplementedError(
                f"MaskedConv2D {self.name!r} reads rows below the pixel or a per-row input; it has no incremental rule."
            )
        return [ROW if self.step_reads_row_right() else PIXEL]

    def step_start(self, batch, width):
        """Weights: the masked kernel's rows up to the pixel's as a (taps * features, filters)
        matrix, and the bias or None. State: the window (none for a 1 x 1 kernel)."""
        matrix = ops.reshape(self.kernel[: self._rows_above + 1], (-1, self.filters))  # rows below are zero
        weights = (matrix, in_compute_dtype(self, self.bias) if self.use_bias else None)
        if self.kernel_size == (1, 1):
            return weights, ()
        padded = width + 2 * (self.kernel_size[1] // 2)
        return weights, (ops.zeros((batch, self._rows_above + 1, padded, np.shape(self.mask)[2]), self.compute_dtype),)

    def step_write(self, state, col, pixel):
        """The window with the input `pixel` (batch, 1, 1, features) stored at column `col`."""
        if self.kernel_size == (1, 1):
            return state
        (window,) = state
        return (ops.slice_update(window, [0, self._rows_above, col + self.kernel_size[1] // 2, 0], pixel),)

    def step_apply(self, weights, state, col, pixel):
        """(state, output (batch, 1, 1, filters) at column `col` of the current row), input `pixel` there."""
        matrix, bias = weights
        state = self.step_write(state, col, pixel)
        if self.kernel_size == (1, 1):
            patch = pixel
        else:
            (window,) = state
            patch = ops.slice(window, [0, 0, col, 0],
                              [ops.shape(window)[0], self._rows_above + 1, self.kernel_size[1], window.shape[-1]])
        out = ops.matmul(ops.reshape(patch, (-1, matrix.shape[0])), matrix)
        if bias is not None:
            out = out + bias
        return state, ops.reshape(out, (-1, 1, 1, self.filters))

    def step(self, weights, state, col, inputs, conditioning=None):
        if self.step_reads_row_right():
            return self.step_write(state, col, inputs), None
        state, out = self.step_apply(weights, state, col, inputs)
        return state, out if conditioning is None else ops.add(out, conditioning)

    def row_apply(self, weights, window):
        """The convolution over the window's rows at every column, (batch, 1, W, filters): one
        matmul of the patches (a TensorFlow convolution returns a wrong shape for an empty batch)."""
        matrix, bias = weights
        width = window.shape[2] - 2 * (self.kernel_size[1] // 2)
        patches = ops.stack([window[:, :, col:col + width] for col in range(self.kernel_size[1])], axis=2)
        patches = ops.reshape(ops.transpose(patches, (0, 3, 1, 2, 4)), (-1, 1, width, matrix.shape[0]))
        out = ops.matmul(patches, matrix)
        return out if bias is None else out + bias

    def row_step(self, weights, state, inputs, conditioning=None):
        """The whole current row from the window (a mask that reads the row right of the pixel:
        the output at row r is final once row r is)."""
        out = self.row_apply(weights, state[0])
        return state, out if conditioning is None else ops.add(out, conditioning)

    def end_of_row(self, weights, state):
        return state if self.kernel_size == (1, 1) else (shift_rows_up(state[0]),)
