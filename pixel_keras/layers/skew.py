"""`Skew` / `Unskew`: shift row i of a map right by i so that diagonals become columns."""

import keras
from keras import ops


def _static_height_width(shape, layer):
    height, width = shape[1], shape[2]
    if height is None or width is None:
        raise ValueError(f"{layer} needs a static height and width. Received input shape {tuple(shape)}.")
    return height, width


@keras.saving.register_keras_serializable(package="pixel_keras")
class Skew(keras.layers.Layer):
    """(batch, n, m, f) -> (batch, n, m + n - 1, f) with row i moved right by i, zeros elsewhere.

    Done without a loop: pad each row to length m + n, flatten, drop the last n entries and fold
    into rows of length m + n - 1; each row then starts one place further right than the one above.
    """

    def call(self, inputs):
        height, width = _static_height_width(inputs.shape, "Skew")
        features = inputs.shape[-1]
        padded = ops.pad(inputs, ((0, 0), (0, 0), (0, height), (0, 0)))
        flat = ops.reshape(padded, (-1, height * (width + height), features))
        flat = flat[:, : height * (width + height - 1)]
        return ops.reshape(flat, (-1, height, width + height - 1, features))

    def compute_output_shape(self, input_shape):
        height, width = _static_height_width(input_shape, "Skew")
        return (input_shape[0], height, width + height - 1, input_shape[3])


@keras.saving.register_keras_serializable(package="pixel_keras")
class Unskew(keras.layers.Layer):
    """Inverse of `Skew`: (batch, n, m + n - 1, f) -> (batch, n, m, f)."""

    def call(self, inputs):
        height, skewed_width = _static_height_width(inputs.shape, "Unskew")
        width = skewed_width - height + 1
        if width < 1:
            raise ValueError(f"Unskew expects width >= height. Received input shape {tuple(inputs.shape)}.")
        features = inputs.shape[-1]
        flat = ops.reshape(inputs, (-1, height * skewed_width, features))
        flat = ops.pad(flat, ((0, 0), (0, height), (0, 0)))
        return ops.reshape(flat, (-1, height, width + height, features))[:, :, :width]

    def compute_output_shape(self, input_shape):
        height, skewed_width = _static_height_width(input_shape, "Unskew")
        return (input_shape[0], height, skewed_width - height + 1, input_shape[3])
