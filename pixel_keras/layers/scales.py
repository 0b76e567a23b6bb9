"""The Multi-Scale PixelRNN's own layers (paper section 3.6; `pixel_keras.multiscale` builds the
model): `Subsample`, the small image as every f-th pixel, and `MergeScales`, the two stages' logits
put together."""

import keras
import numpy as np
from keras import ops


def check_factor(factor):
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 2:
        raise ValueError(f"Expected factor to be an integer >= 2. Received factor={factor!r}.")


@keras.saving.register_keras_serializable(package="pixel_keras")
class Subsample(keras.layers.Layer):
    """The small image of a multi-scale model: every `factor`-th pixel, `image[:, ::f, ::f]`."""

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        check_factor(factor)
        self.factor = factor

    def call(self, inputs):
        return inputs[:, ::self.factor, ::self.factor]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] // self.factor, input_shape[2] // self.factor) + tuple(input_shape[3:])

    def compute_output_spec(self, inputs):
        # The input's dtype (int32 images), not the policy's float compute dtype.
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def small_positions(image_shape, factor):
    """Boolean (H, W): True at the pixels that form the small image."""
    positions = np.zeros(tuple(image_shape[:2]), bool)
    positions[::factor, ::factor] = True
    return positions


def put_small(small, large, factor):
    """`large` (batch, n, n, ...) with `small` (batch, s, s, ...) written at the small positions
    (i f, j f): `large[:, ::f, ::f] = small`, as ops."""
    upsampled = ops.repeat(ops.repeat(small, factor, axis=1), factor, axis=2)
    positions = small_positions(large.shape[1:3], factor)
    positions = positions.reshape((1,) + positions.shape + (1,) * (len(large.shape) - 3))
    return ops.where(positions, upsampled, large)


@keras.saving.register_keras_serializable(package="pixel_keras")
class MergeScales(keras.layers.Layer):
    """[small-stage logits (batch, s, s, ...), conditional logits (batch, n, n, ...)] -> logits
    (batch, n, n, ...) with the small stage's at the small positions (i f, j f), the conditional
    stage's elsewhere."""

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        check_factor(factor)
        self.factor = factor

    def call(self, inputs):
        return put_small(*inputs, self.factor)

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}
