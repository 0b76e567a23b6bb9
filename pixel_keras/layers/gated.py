"""`GatedBlock`: one layer of the Gated PixelCNN's vertical and horizontal stacks (no blind spot)."""

import keras
from keras import ops

from pixel_keras.layers.masked_conv import MaskedConv2D


def gate(pre_activation):
    """tanh(a) * sigmoid(b) of the two halves a, b of the last axis.

    Feature f of a and feature f of b sit at the same place in their halves (the blocks of
    `MaskedConv2D(output_blocks=2)`), so they share a colour group and so does their product.
    """
    content, gate_logits = ops.split(pre_activation, 2, axis=-1)
    return ops.tanh(content) * ops.sigmoid(gate_logits)


def shift_down(feature_map):
    """Move a (batch, H, W, F) map down one row (zeros on top): row i then holds row i - 1."""
    return ops.pad(feature_map, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


@keras.saving.register_keras_serializable(package="pixel_keras")
class GatedBlock(keras.layers.Layer):
    """A Gated PixelCNN layer (van den Oord et al. 2016b, Figure 2) on the two stacks.

    Vertical stack: a k x k convolution with mask "V" (rows up to the current one, whole), gated.
    Its output at row i has seen the whole of row i, so it reaches the horizontal stack only shifted
    down one row: the link, a 1 x 1 convolution of the shifted vertical pre-activation, carries
    rows above only, which every colour group may see, so it needs no colour mask.
    Horizontal stack: a 1 x k convolution with mask B (the pixels to the left, and the current pixel
    through colour groups) plus the link, gated with colour groups in both halves, then a 1 x 1
    mask-B convolution. The caller adds the residual connection and collects the skip outputs.

    Args:
        units: features of each stack (the gate pre-activations have 2 * units).
        kernel_size: odd k of the vertical k x k and the horizontal 1 x k convolution.
        color_channels: colour groups of the image (1 grayscale, 3 RGB).
        kernel_initializer: initializer of every kernel.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: [vertical, horizontal] maps (batch, H, W, units).
        conditioning: optional bias broadcastable to (batch, H, W, 4 * units) (e.g. from
            `Conditioning`): its first 2 * units features are added to the vertical gate
            pre-activation, the last 2 * units to the horizontal one.

    Returns:
        [vertical output, horizontal output], each (batch, H, W, units).
    """

    def __init__(self, units, kernel_size=3, color_channels=1, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or isinstance(units, bool) or units < color_channels:
            raise ValueError(
                f"Expected units to be an integer >= color_channels={color_channels}. Received units={units!r}."
            )
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"Expected an odd positive integer kernel_size. Received kernel_size={kernel_size!r}.")
        self.units = units
        self.kernel_size = kernel_size
        self.color_channels = color_channels
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        init = dict(kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy)  # sub-layers: our policy
        self.vertical = MaskedConv2D(2 * units, kernel_size, "V", name="vertical", **init)
        self.link = keras.layers.Conv2D(2 * units, 1, name="vertical_to_horizontal", **init)
        self.horizontal = MaskedConv2D(
            2 * units, (1, kernel_size), "B", color_channels, output_blocks=2, name="horizontal", **init
        )
        self.output_conv = MaskedConv2D(units, 1, "B", color_channels, name="horizontal_output", **init)

    @property
    def conditioning_units(self):
        """Features of the conditioning bias this layer takes: both stacks' pre-activations."""
        return 4 * self.units

    def build(self, input_shape):
        vertical_shape, horizontal_shape = input_shape
        self.vertical.build(vertical_shape)
        self.link.build(tuple(vertical_shape[:-1]) + (2 * self.units,))
        self.horizontal.build(horizontal_shape)
        self.output_conv.build(tuple(horizontal_shape[:-1]) + (self.units,))

    def call(self, inputs, conditioning=None):
        vertical, horizontal = inputs
        vertical_pre = self.vertical(vertical)
        horizontal_pre = self.horizontal(horizontal) + self.link(shift_down(vertical_pre))
        if conditioning is not None:
            vertical_bias, horizontal_bias = ops.split(conditioning, 2, axis=-1)
            vertical_pre = vertical_pre + vertical_bias
            horizontal_pre = horizontal_pre + horizontal_bias
        return [gate(vertical_pre), self.output_conv(gate(horizontal_pre))]

    def compute_output_shape(self, input_shape):
        vertical_shape, horizontal_shape = input_shape
        return [tuple(vertical_shape[:-1]) + (self.units,), tuple(horizontal_shape[:-1]) + (self.units,)]

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            kernel_size=self.kernel_size,
            color_channels=self.color_channels,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
