"""The built-in archs' block builders and layer-harness cases (`pixel_keras.archs` registers them).

Each builder makes the layers the if/elif chain of `build_model` made before the registry, with the
same names in the same order: stored .keras files and codec blobs depend on them.
"""

import keras

from pixel_keras.layers import CausalSelfAttention, DiagonalBiLSTM, GatedBlock, MaskedConv2D, RowLSTM, SpatialLSTM

# The recurrent layer of each PixelRNN-style arch (Spatial LSTM: RIDE's 2-D LSTM with our discrete head).
RECURRENT_LAYERS = {"row_lstm": RowLSTM, "diagonal_bilstm": DiagonalBiLSTM, "spatial_lstm": SpatialLSTM}


def conditioned_call(layer, inputs, condition):
    """Call a layer that takes an optional `conditioning` bias of `layer.conditioning_units` features."""
    bias = condition(layer.conditioning_units, f"{layer.name}_condition")
    return layer(inputs) if bias is None else layer(inputs, conditioning=bias)


def pixelcnn_block(x, index, spec):
    """Residual block of the paper's Figure 5: 1 x 1 (2h -> h), 3 x 3 mask B, 1 x 1 (h -> 2h); a
    conditioning bias goes to the 3 x 3 convolution (`conditioning=`: added to its output, before
    the next ReLU). Models saved before 2026-12 hold the same sum as an `Add` layer."""
    hidden, color_channels = spec.hidden, spec.color_channels
    for kernel, units, part in ((1, hidden, "reduce"), (3, hidden, "conv"), (1, 2 * hidden, "expand")):
        x = keras.layers.ReLU(name=f"block{index}_{part}_relu")(x)
        layer = MaskedConv2D(units, kernel, "B", color_channels, name=f"block{index}_{part}")
        if part == "conv":
            layer.build(x.shape)  # its weights before the conditioning's: seeded initial values as before
            x = conditioned_call(layer, x, spec.condition)
        else:
            x = layer(x)
    return x


def recurrent_block(x, index, spec):
    """A Row LSTM, Diagonal BiLSTM or Spatial LSTM layer with the 1 x 1 projection back to 2h features;
    a conditioning bias goes into the layer's input-to-state map."""
    layer = RECURRENT_LAYERS[spec.arch](spec.hidden, color_channels=spec.color_channels, name=f"{spec.arch}{index}")
    x = conditioned_call(layer, x, spec.condition)
    return MaskedConv2D(2 * spec.hidden, 1, "B", spec.color_channels, name=f"{spec.arch}{index}_project")(x)


def gated_input(x, spec):
    """A vertical stack (rows above, kept in `spec.state`) and a horizontal one (the row so far)."""
    spec.state["vertical"] = MaskedConv2D(spec.hidden, 7, "V", name="input_vertical")(x)
    return MaskedConv2D(spec.hidden, (1, 7), "A", spec.color_channels, name="input_conv")(x)


def gated_block(x, index, spec):
    """A gated block of both stacks; the vertical stack's new value goes back into `spec.state`."""
    layer = GatedBlock(spec.hidden, 3, spec.color_channels, name=f"gated{index}")
    spec.state["vertical"], out = conditioned_call(layer, [spec.state["vertical"], x], spec.condition)
    return out


def pixelsnail_block(x, index, spec, heads=2):
    """A residual PixelCNN block (1 x 1, 3 x 3 mask B with the conditioning bias, 1 x 1; the
    PixelCNN's layers and names) then causal attention over its result: the block adds both."""
    convolved = pixelcnn_block(x, index, spec)
    inner = keras.layers.Add(name=f"attention{index}_input")([x, convolved])
    inner = keras.layers.ReLU(name=f"attention{index}_relu")(inner)
    attended = CausalSelfAttention(2 * spec.hidden, heads, max(1, spec.hidden // heads), spec.color_channels,
                                   name=f"attention{index}")(inner)
    return keras.layers.Add(name=f"block{index}_sum")([convolved, attended])


# Layer-harness cases (tests/test_layer_harness.py): tiny shapes; 6 features divide into 3 colour groups.
_GRAY, _RGB = (2, 3, 3, 1), (2, 3, 3, 3)


def _case(name, layer_cls, init_kwargs, input_shape, output_shape, num_weights, **options):
    return dict(name=name, layer_cls=layer_cls, init_kwargs=init_kwargs, input_shape=input_shape,
                expected_output_shape=output_shape, expected_num_trainable_weights=num_weights, **options)


def masked_conv_cases():
    return [
        _case("masked_conv_a_rgb", MaskedConv2D,
              {"filters": 6, "kernel_size": 3, "mask_type": "A", "color_channels": 3}, _RGB, (2, 3, 3, 6), 2),
        _case("masked_conv_b_blocks", MaskedConv2D,
              {"filters": 8, "kernel_size": (1, 3), "mask_type": "B", "output_blocks": 4}, _GRAY, (2, 3, 3, 8), 2),
        _case("masked_conv_v", MaskedConv2D, {"filters": 4, "kernel_size": 3, "mask_type": "V"}, _GRAY,
              (2, 3, 3, 4), 2),
    ]


def row_lstm_cases():
    return [_case("gray", RowLSTM, {"units": 4}, _GRAY, (2, 3, 3, 4), 3),
            _case("rgb", RowLSTM, {"units": 6, "color_channels": 3}, _RGB, (2, 3, 3, 6), 3)]


def diagonal_bilstm_cases():
    return [_case("gray", DiagonalBiLSTM, {"units": 4}, _GRAY, (2, 3, 3, 4), 6)]


def spatial_lstm_cases():
    return [_case("gray", SpatialLSTM, {"units": 4}, _GRAY, (2, 3, 3, 4), 3)]


def gated_cases():
    """The harness's training check cannot feed list inputs and outputs through its generator
    (tf.data rejects a list signature): tests/test_layer_harness.py runs one training step instead."""
    shapes = [(2, 3, 3, 6), (2, 3, 3, 6)]
    return [_case("gated_block", GatedBlock, {"units": 6, "color_channels": 3}, shapes, shapes, 8,
                  input_dtype=["float32", "float32"], run_training_check=False)]


def pixelsnail_cases():
    case = dict(layer_cls=CausalSelfAttention, expected_num_trainable_weights=8)
    return [dict(case, name="gray", init_kwargs={"units": 4, "heads": 2, "key_dim": 3},
                 input_shape=(2, 3, 3, 1), expected_output_shape=(2, 3, 3, 4)),
            dict(case, name="rgb", init_kwargs={"units": 6, "heads": 1, "key_dim": 2, "color_channels": 3},
                 input_shape=(2, 3, 3, 3), expected_output_shape=(2, 3, 3, 6))]
