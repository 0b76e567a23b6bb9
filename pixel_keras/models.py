"""`build_model`: functional Keras models of every registered arch (`pixel_keras.archs`): PixelCNN,
Gated PixelCNN, the PixelRNNs and any a user registers."""

import keras

from pixel_keras import blocks, settings
from pixel_keras.archs import BlockSpec, get_arch
from pixel_keras.checks import check_image_shape, check_positive_int
from pixel_keras.deprecation import moved, no_attribute
from pixel_keras.head_registry import check_head, features_per_channel, head_output
from pixel_keras.layers import Conditioning, MaskedConv2D


def __getattr__(name):
    if name == "ARCHS":
        return settings.archs_deprecated(__name__)
    if name == "RECURRENT_LAYERS":
        return moved(__name__, name, blocks)
    raise no_attribute(__name__, name)

# Paper sizes (Table 1, CIFAR-10): 15-layer PixelCNN (first + 12 residual blocks + 2 head layers),
# 12-layer PixelRNNs, h = 128.
DEFAULT_SIZE = {"num_layers": 12, "hidden": 128}


def build_model(arch, image_shape, num_levels=256, num_layers=None, hidden=None, residual=True,
                skip=False, head_units=None, num_classes=None, head="categorical", num_mixtures=5,
                conditioning_map_features=None, dropout=0.0):
    """Build a PixelCNN or PixelRNN that maps integer images to per-channel logits.

    Args:
        arch: a registered arch's name (`pixel_keras.arch_names()`): the built-ins "pixelcnn",
            "row_lstm", "diagonal_bilstm", "spatial_lstm", "gated_pixelcnn", or one of
            `pixel_keras.register_arch` (README, "Adding an architecture").
        image_shape: (height, width, channels) with 1 or 3 channels.
        num_levels: discrete values per channel; 2 gives a Bernoulli (sigmoid) head, more a softmax.
        num_layers: residual blocks (PixelCNN) or recurrent layers (PixelRNN) between the 7 x 7
            mask-A convolution and the output head. Default 12.
        hidden: h; the residual stream has 2h features (gated_pixelcnn: each stack has h, the gate
            pre-activations 2h). Default 128.
        residual: add each block's output to its input (else the block's output replaces it).
        skip: feed the sum of every block's output to the head instead of the last block's.
        head_units: features of the first 1 x 1 head convolution. Default 2h.
        num_classes: K for a class-conditional model: a second input `labels`, int32 (batch,) in
            [0, K), whose learned per-class vectors are added to every layer's pre-activations
            (`Conditioning`). None: unconditional.
        head: "categorical" (softmax / sigmoid, the paper's) or "logistic_mixture" (per channel, a
            mixture of `num_mixtures` discretized logistics; `pixel_keras.heads`), whose output is
            per-level log-probabilities in place of the logits (Bernoulli logits for 2 levels).
        num_mixtures: logistic components per channel (logistic_mixture head only).
        conditioning_map_features: c for a model conditioned on a spatial map: a last input
            `conditioning_map`, float (batch, H, W, c), that an unmasked 1 x 1 convolution adds to
            every layer's pre-activations (`Conditioning`, spatial form; the Multi-Scale
            PixelRNN's conditional stage). None: no map.
        dropout: rate of a `Dropout` on every block's output before the residual sum (training
            only; PixelCNN++ regularises with 0.5 on small data). 0: none, the paper's.

    Returns:
        A `keras.Model` named `arch` taking int32 images (batch, H, W, C) with values in
        [0, num_levels) (conditional: inputs [images, labels]) and returning logits
        (batch, H, W, C, num_levels), or Bernoulli logits (batch, H, W, C) when num_levels == 2.
    """
    registered = get_arch(arch)
    num_layers, hidden, head_units = _checked_arguments(
        registered, image_shape, num_levels, num_layers, hidden, head_units, num_classes, head, num_mixtures,
        conditioning_map_features, dropout)
    height, width, channels = image_shape
    if registered.check_shape is not None:
        registered.check_shape(tuple(image_shape))

    images = keras.Input(shape=tuple(image_shape), dtype="int32", name="images")
    labels = None if num_classes is None else keras.Input(shape=(), dtype="int32", name="labels")
    condition_map = None if conditioning_map_features is None else keras.Input(
        shape=(height, width, conditioning_map_features), name="conditioning_map")

    x = keras.layers.Rescaling(2.0 / (num_levels - 1), offset=-1.0, name="scale_pixels")(images)
    spec = BlockSpec(arch, hidden, channels, _conditioner(labels, num_classes, condition_map))
    if registered.build_input is None:
        x = MaskedConv2D(2 * hidden, 7, "A", channels, name="input_conv")(x)
    else:
        x = registered.build_input(x, spec)
    skips = []
    for index in range(num_layers):
        out = registered.build_block(x, index, spec)
        if dropout:  # elementwise, so causality is untouched; the identity outside training
            out = keras.layers.Dropout(dropout, name=f"block{index}_dropout")(out)
        skips.append(out)
        x = keras.layers.Add(name=f"residual{index}")([x, out]) if residual else out
    if skip:
        x = keras.layers.Add(name="skip_sum")(skips) if num_layers > 1 else skips[0]
    per_channel = features_per_channel(head, num_levels, num_mixtures)
    for units, part in ((head_units, "head_hidden"), (channels * per_channel, "head_logits")):
        x = keras.layers.ReLU(name=f"{part}_relu")(x)
        # The last convolution computes in float32 under a mixed-precision policy: logits (and the
        # mixture head's means, whose bins are 2 / 255 wide) need float32's resolution.
        x = MaskedConv2D(units, 1, "B", channels, name=part, dtype="float32" if part == "head_logits" else None)(x)
    logits = head_output(x, head, tuple(image_shape), num_levels, num_mixtures)
    inputs = [tensor for tensor in (images, labels, condition_map) if tensor is not None]  # [images, labels, map]
    return keras.Model(inputs if len(inputs) > 1 else images, logits, name=arch)


def _checked_arguments(registered, image_shape, num_levels, num_layers, hidden, head_units, num_classes, head,
                       num_mixtures, conditioning_map_features, dropout):
    """`build_model`'s arguments checked (a one-line ValueError naming the first bad one);
    returns (num_layers, hidden, head_units) with their defaults filled in."""
    check_head(head, num_mixtures)
    check_image_shape(image_shape)
    num_layers = DEFAULT_SIZE["num_layers"] if num_layers is None else num_layers
    hidden = DEFAULT_SIZE["hidden"] if hidden is None else hidden
    head_units = 2 * hidden if head_units is None else head_units
    for name, value in (("num_levels", num_levels), ("num_layers", num_layers), ("hidden", hidden),
                        ("head_units", head_units)):
        check_positive_int(name, value)
    if num_levels < 2:
        raise ValueError(f"Expected num_levels >= 2. Received num_levels={num_levels}.")
    if num_classes is not None and (not isinstance(num_classes, int) or isinstance(num_classes, bool)
                                    or num_classes < 2):
        raise ValueError(f"Expected num_classes to be an integer >= 2 or None. Received num_classes={num_classes!r}.")
    if conditioning_map_features is not None:
        check_positive_int("conditioning_map_features", conditioning_map_features)
    if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"Expected dropout to be a number in [0, 1). Received dropout={dropout!r}.")
    if registered.conditioning is None and (num_classes is not None or conditioning_map_features is not None):
        raise ValueError(f"Arch {registered.name!r} takes no conditioning: expected num_classes=None and "
                         f"conditioning_map_features=None (a multi-scale model's large stage needs it).")
    return num_layers, hidden, head_units


def _conditioner(labels, num_classes, condition_map):
    """`BlockSpec.condition`: `condition(units, name)` -> the bias of the labels and / or the
    conditioning map for a layer of `units` features (their sum when both), None when unconditional."""

    def condition(units, name):
        biases = [] if labels is None else [Conditioning(units, num_classes, name=name)(labels)]
        if condition_map is not None:
            biases.append(Conditioning(units, name=f"{name}_map")(condition_map))
        if len(biases) > 1:
            return keras.layers.Add(name=f"{name}_sum")(biases)
        return biases[0] if biases else None

    return condition
