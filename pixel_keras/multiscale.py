"""Multi-Scale PixelRNN (paper section 3.6): p(image) = p(small) p(rest | small), as one model.

The small image is the large one subsampled with stride f (`image[::f, ::f]`), so its pixels are
pixels of the large image. One functional model holds both stages:

- the small stage, an unconditional `build_model` of the s x s image;
- the conditional stage, inputs [images, small_images]: the small image (scaled like the images)
  goes through transposed convolutions up to a c x n x n map that every layer of a `build_model`
  of the n x n image receives through `Conditioning` (an unmasked 1 x 1 convolution added to its
  pre-activations);
- `MergeScales` puts the small stage's logits at the small image's positions and the conditional
  stage's elsewhere.

So the model's output has the shape of any model's logits, and the log-likelihood of its logits
(the loss, `pk.log_prob`) is exactly log p(small) + log p(rest | small): the conditional stage's
predictions at the small positions are discarded, each pixel is scored once. The output is not
autoregressive in raster order as a whole (the map sees the whole small image), so sampling runs
in two phases: the small positions first, then the rest with them known (the plain loop: the whole
model in two passes, `stage_masks`; the fast one: each stage's incremental model, `stages`).
"""

import dataclasses
from typing import Optional

import keras
import numpy as np

from pixel_keras.checks import check_image_shape, check_positive_int
from pixel_keras.layers.scales import MergeScales, Subsample, check_factor, small_positions
from pixel_keras.likelihood import log_prob
from pixel_keras.models import DEFAULT_SIZE, build_model

SMALL_STAGE, CONDITIONAL_STAGE, SUBSAMPLE = "small_stage", "conditional_stage", "subsample"
MAP_OUTPUT = "map_upsample"  # the conditioning map network's last layer


def conditioning_map_network(small_images, num_levels, factor, features):
    """The small image, scaled like the model's inputs, through two transposed convolutions (3 x 3,
    then 2f x 2f with stride f) to a (batch, n, n, features) map; it sees the whole small image."""
    x = keras.layers.Rescaling(2.0 / (num_levels - 1), offset=-1.0, name="scale_small")(small_images)
    x = keras.layers.Conv2DTranspose(features, 3, padding="same", activation="relu", name="map_conv")(x)
    return keras.layers.Conv2DTranspose(features, 2 * factor, strides=factor, padding="same", activation="relu",
                                        name=MAP_OUTPUT)(x)


def build_multiscale_model(arch, image_shape, num_levels=256, factor=2, num_layers=None, hidden=None,
                           map_features=None, **options):
    """A Multi-Scale PixelRNN of n x n images: a model of the s x s image `image[::f, ::f]` and a
    model of the n x n image given it, as one `keras.Model` (one `.keras` file).

    Args:
        arch, image_shape, num_levels, num_layers, hidden: as `build_model`, for both stages.
        factor: f, the subsampling stride; height and width must be multiples of f.
        map_features: c, features of the conditioning map; default `hidden`.
        **options: other `build_model` options (num_classes, head, residual, skip, ...), both stages.

    Returns:
        A model with the inputs and outputs of a `build_model` model (images, or [images, labels]
        with `num_classes`; logits of the large image), whose log-likelihood is
        log p(small) + log p(rest | small). Its layers `small_stage` and `conditional_stage` (inputs
        [images, small_images(, labels)]) are the two stages.
    """
    check_factor(factor)
    check_image_shape(image_shape)
    height, width, channels = image_shape
    if height % factor or width % factor:
        raise ValueError(f"Expected height and width to be multiples of factor={factor}. "
                         f"Received image_shape={tuple(image_shape)}.")
    if "conditioning_map_features" in options:
        raise ValueError("build_multiscale_model makes the conditioning map itself: use map_features=. "
                         f"Received conditioning_map_features={options['conditioning_map_features']!r}.")
    size = {"num_layers": num_layers, "hidden": hidden}
    map_features = (hidden or DEFAULT_SIZE["hidden"]) if map_features is None else map_features
    check_positive_int("map_features", map_features)
    small_shape = (height // factor, width // factor, channels)
    small_model = build_model(arch, small_shape, num_levels, **size, **options)
    small_model.name = SMALL_STAGE
    large_model = build_model(arch, tuple(image_shape), num_levels, **size, **options,
                              conditioning_map_features=map_features)

    images = keras.Input(shape=tuple(image_shape), dtype="int32", name="images")
    small_images = keras.Input(shape=small_shape, dtype="int32", name="small_images")
    num_classes = options.get("num_classes")
    labels = None if num_classes is None else keras.Input(shape=(), dtype="int32", name="labels")
    extra = [] if labels is None else [labels]
    condition_map = conditioning_map_network(small_images, num_levels, factor, map_features)
    conditional = keras.Model([images, small_images] + extra, large_model([images] + extra + [condition_map]),
                              name=CONDITIONAL_STAGE)

    small = Subsample(factor, name=SUBSAMPLE)(images)
    small_logits = small_model(small if labels is None else [small, labels])
    large_logits = conditional([images, small] + extra)
    logits = MergeScales(factor, name="merge_scales", dtype="float32")([small_logits, large_logits])  # float32 logits
    return keras.Model(images if labels is None else [images, labels], logits, name=f"multiscale_{arch}")


def multiscale_factor(model):
    """f of a model from `build_multiscale_model`; None for a single-scale model."""
    layers = [layer for layer in model.layers if isinstance(layer, Subsample)]
    return layers[0].factor if layers else None


def stages(model):
    """(small-stage model, conditional-stage model, factor) of a multi-scale model."""
    factor = multiscale_factor(model)
    if factor is None:
        raise ValueError(f"Expected a model from build_multiscale_model. Received the model {model.name!r}.")
    return model.get_layer(SMALL_STAGE), model.get_layer(CONDITIONAL_STAGE), factor


def conditional_parts(model):
    """(map network: small images -> conditioning map, the large image's `build_model` model:
    [images(, labels), conditioning_map] -> logits) of a multi-scale model's conditional stage; the
    fast sampler runs them apart, the map once per image and the model pixel by pixel."""
    _, conditional, _ = stages(model)
    small_images = next(tensor for tensor in conditional.inputs if tensor.name == "small_images")
    map_network = keras.Model(small_images, conditional.get_layer(MAP_OUTPUT).output)
    large_model = next(layer for layer in conditional.layers if isinstance(layer, keras.Model))
    return map_network, large_model


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of a model's one-sub-pixel-at-a-time walk (`stage_plan`).

    Fields:
        model: the network walked (a `build_model` model).
        image_shape: the image it walks, (H, W, C).
        drawn: bool (H * W * C,) in raster order: the sub-pixels this stage draws (and codes); the
            others are known when it runs.
        map_network: the multi-scale conditional stage's small image -> conditioning map network
            (computed once per image, an input of `model`); None for the other stages.
    """

    model: object
    image_shape: tuple
    drawn: np.ndarray
    map_network: Optional[object] = None


def stage_plan(model, image_shape):
    """[Stage] of `model` at `image_shape` (the fast sampler's and the codec's one plan): the
    model itself over every sub-pixel; for a multi-scale model, its small stage over the small
    image (every value), then the large image's model of its conditional stage over the rest (the
    small positions known). Sizes other than the model's work where the layers do (the codec codes
    any size: the map network is convolutional, so its input spec is dropped)."""
    image_shape = tuple(image_shape)
    factor = multiscale_factor(model)
    if factor is None:
        return [Stage(model, image_shape, np.ones(int(np.prod(image_shape)), bool))]
    small_model, _, _ = stages(model)
    map_network, large_model = conditional_parts(model)
    map_network.input_spec = None
    height, width, channels = image_shape
    small_shape = (height // factor, width // factor, channels)
    known = np.repeat(small_positions(image_shape, factor).reshape(-1), channels)
    return [Stage(small_model, small_shape, np.ones(int(np.prod(small_shape)), bool)),
            Stage(large_model, image_shape, ~known, map_network)]


def stage_masks(model, image_shape):
    """Known-masks of the sampling phases, each broadcastable to (batch, H, W, C): [None] for a
    single-scale model (one phase, nothing extra known); for a multi-scale model, the small
    positions are drawn first (everything else taken as known), then the rest (small known)."""
    factor = multiscale_factor(model)
    if factor is None:
        return [None]
    positions = small_positions(image_shape, factor)[None, :, :, None]
    return [~positions, positions]


def log_prob_stages(model, images, batch_size=256, *, labels=None):
    """(log p(small), log p(rest | small)) in nats per image of a multi-scale model: numpy arrays
    (batch,) that add up to `pk.log_prob(model, images)`; divide each by the large image's
    H x W x C (`bits_per_dim_from_nats`) for the stages' shares of its bits/dim."""
    small_model, _, factor = stages(model)
    total = log_prob(model, images, batch_size, labels=labels)
    small = log_prob(small_model, np.asarray(images)[:, ::factor, ::factor], batch_size, labels=labels)
    return small, total - small
