"""`Conditioning`: a class label or a spatial map -> a bias added to a layer's pre-activations."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="pixel_keras")
class Conditioning(keras.layers.Layer):
    """The one conditioning mechanism of every arch (Gated PixelCNN paper, eq. 4 and 5).

    With `num_classes=K` the input is labels, int (batch,), and each class has a learned vector of
    `units` features: the output (batch, 1, 1, units) is a per-image bias. Without `num_classes`
    the input is a spatial map (batch, H, W, c) and an unmasked 1 x 1 convolution maps it to
    (batch, H, W, units) (the Multi-Scale PixelRNN's conditioning). Either is added to a
    pre-activation before its gates / nonlinearity; conditioning carries no pixel of the image, so
    it needs no mask.

    Args:
        units: features of the pre-activation the bias is added to.
        num_classes: number of classes K for label conditioning; None for a spatial map.
        kernel_initializer: initializer of the class vectors / the 1 x 1 kernel.
        **kwargs: base `keras.layers.Layer` arguments.
    """

    def __init__(self, units, num_classes=None, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise ValueError(f"Expected units to be a positive integer. Received units={units!r}.")
        if num_classes is not None and (
            not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2
        ):
            raise ValueError(
                f"Expected num_classes to be an integer >= 2 (or None for a spatial map). "
                f"Received num_classes={num_classes!r}."
            )
        self.units = units
        self.num_classes = num_classes
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        if self.num_classes is not None:
            if len(input_shape) != 1:
                raise ValueError(
                    f"Label conditioning expects labels of shape (batch,). Received input shape {tuple(input_shape)}."
                )
            self.class_vectors = self.add_weight(
                name="class_vectors", shape=(self.num_classes, self.units), initializer=self.kernel_initializer,
            )
        else:
            if len(input_shape) != 4 or input_shape[-1] is None:
                raise ValueError(
                    "Spatial conditioning expects a map (batch, height, width, features). "
                    f"Received input shape {tuple(input_shape)}."
                )
            self.kernel = self.add_weight(
                name="kernel", shape=(input_shape[-1], self.units), initializer=self.kernel_initializer,
            )

    def call(self, inputs):
        if self.num_classes is not None:
            one_hot = ops.one_hot(ops.cast(inputs, "int32"), self.num_classes, dtype=self.compute_dtype)
            return ops.reshape(ops.matmul(one_hot, self.class_vectors), (-1, 1, 1, self.units))
        return ops.matmul(ops.cast(inputs, self.compute_dtype), self.kernel)  # a 1 x 1 convolution

    def compute_output_shape(self, input_shape):
        if self.num_classes is not None:
            return (input_shape[0], 1, 1, self.units)
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            num_classes=self.num_classes,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
