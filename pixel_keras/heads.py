"""The built-in output heads, everything each has in one module: what the last masked 1 x 1
convolution's features mean, the model output built from them, how a model is known to have it,
its observed-level view and training loss (`pixel_keras.head_registry` registers them).

- "categorical" (the paper's): per channel, `num_levels` softmax logits, or one Bernoulli logit
  for 2 levels.
- "logistic_mixture" (after PixelCNN++, Salimans et al. 2017): per channel, a mixture of
  `num_mixtures` discretized logistics over the levels, the edge levels taking the tails. Its
  parameters come from that channel's colour group of the head convolution (the same groups as the
  softmax logits), so R -> G -> B conditioning is the masks' exactly. This is one mixture per colour
  channel, not PixelCNN++'s one mixture over RGB with linear coupling of the means. The layer
  returns normalised per-level log-probabilities, shape (..., C, num_levels), so everything that
  takes softmax logits (log_softmax of log-probabilities is the identity) works unchanged; for 2
  levels it returns the Bernoulli logit log p(1) - log p(0), the categorical binary contract.
"""

import dataclasses
from typing import Callable

import keras
from keras import ops

from pixel_keras.checks import check_positive_int
from pixel_keras.inspection import all_layers
from pixel_keras.losses import (NegativeLogLikelihood, bits_per_dim_from_nats, log_prob_per_channel_from_logits,
                                targets_in_range)

# The built-in heads' names (`pixel_keras.head_registry.head_names()` lists any a user registered too).
HEADS = ("categorical", "logistic_mixture")
# Per component: a mixture logit, a mean and a log-scale.
PARAMS_PER_COMPONENT = 3


@dataclasses.dataclass(frozen=True)
class ObservedView:
    """A model's observed-level scoring (what a `head_registry.Head`'s `observed_view` returns):
    `model` (the same inputs and weights as the model; the model itself when its output suffices)
    whose output `log_probs(output, images)` turns into the (batch, H, W, C) float32 nats
    log p(x_i | x_<i) of the observed sub-pixels, and `loss`, the Keras loss (bits per dimension,
    y_true the images) on that output that training fits."""

    model: object
    log_probs: Callable
    loss: object


# The categorical head (the paper's): per channel, num_levels softmax logits, or one Bernoulli logit.

def categorical_features(num_levels, num_mixtures):
    return 1 if num_levels == 2 else num_levels


def categorical_output(features, image_shape, num_levels, num_mixtures):
    """A Reshape to (H, W, C[, L]) named "logits", float32 under every mixed-precision policy: the
    likelihoods need float32 logits."""
    height, width, channels = image_shape
    shape = (height, width, channels) if num_levels == 2 else (height, width, channels, num_levels)
    return keras.layers.Reshape(shape, name="logits", dtype="float32")(features)


def categorical_observed_view(model):
    """The model itself, its logits' log-softmax at the observed level, `NegativeLogLikelihood`."""
    return ObservedView(model, log_prob_per_channel_from_logits, NegativeLogLikelihood())


# The logistic mixture head (after PixelCNN++).

def mixture_features(num_levels, num_mixtures):
    return PARAMS_PER_COMPONENT * num_mixtures


def mixture_output(features, image_shape, num_levels, num_mixtures):
    """A Reshape to the parameters (H, W, C, 3K), "head_params", then `DiscretizedLogisticMixture`
    ("logits"), both float32."""
    height, width, channels = image_shape
    params = keras.layers.Reshape((height, width, channels, mixture_features(num_levels, num_mixtures)),
                                  name="head_params", dtype="float32")(features)
    return DiscretizedLogisticMixture(num_levels, num_mixtures, name="logits", dtype="float32")(params)


def has_mixture_head(model):
    return any(isinstance(layer, DiscretizedLogisticMixture) for layer in all_layers(model))


def mixture_observed_view(model):
    """The parameter view (`parameter_view`: the same layers, outputting (batch, H, W, C, 3K)
    parameters) scored at the observed level only, K logistics per sub-pixel instead of K x L
    (`observed_level_log_probs`), and `MixtureNegativeLogLikelihood`: the full head's numbers to
    float32 rounding at a 20th of the time."""
    view, num_levels, log_scale_min = parameter_view(model)

    def log_probs(params, images):
        return observed_level_log_probs(ops.cast(params, "float32"), images, num_levels, log_scale_min)

    return ObservedView(view, log_probs, MixtureNegativeLogLikelihood(num_levels, log_scale_min))


def _log1mexp(x):
    """log(1 - exp(-x)) for x > 0 with an absolute error of a float32 ulp (what a log-probability
    needs; Maechler's second branch, log1p(-exp(-x)) for x > ln 2, would only add relative accuracy
    to values near 0 and cost a third of the head's time)."""
    return ops.log(-ops.expm1(-x))


def _level_edges(levels, num_levels):
    """Lower bin edge of (float) level k, (2k - 1) / (L - 1) - 1; k + 1 gives its upper edge. The
    all-levels and the observed-level paths both compute edges with this one expression, so they
    see bit-identical edge values."""
    return (2.0 * levels - 1.0) / (num_levels - 1) - 1.0


def _bin_log_probs(lower, upper, first, last):
    """log P(bin) from its standardised edges a < b: level 0 (`first`) takes sigma(b), the last
    level 1 - sigma(a), others sigma(b) - sigma(a) = sigma(b) sigma(-a) (1 - exp(a - b)), in logs
    -softplus(-b) - softplus(a) + log1mexp(b - a): stable in both tails and for tiny scales."""
    log_cdf_upper = -ops.softplus(-upper)  # log sigma(b)
    log_sf_lower = -ops.softplus(lower)  # log (1 - sigma(a))
    inside = log_cdf_upper + log_sf_lower + _log1mexp(upper - lower)
    return ops.where(first, log_cdf_upper, ops.where(last, log_sf_lower, inside))


def discretized_logistic_log_probs(means, log_scales, num_levels):
    """log P(level) for each of `num_levels` levels under discretized logistics.

    Level k sits at x_k = 2k / (L - 1) - 1 in [-1, 1] (the models' input scaling) with a bin of
    half-width 1 / (L - 1); level 0 takes the lower tail, level L - 1 the upper one. Neighbouring
    bins share one rounded edge value, so the probabilities telescope to 1 even at scale e^-7 (two
    separately rounded edges would leave gaps of float32 ulps times the density, ~1e-5). No density
    shortcut for narrow bins (`_bin_log_probs`).

    Args:
        means, log_scales: (..., K) float tensors (log-scales already floored).
        num_levels: L >= 2.

    Returns:
        (..., K, L) log-probabilities.
    """
    edges = _level_edges(ops.arange(num_levels + 1, dtype=means.dtype), num_levels)
    standardised = (edges - means[..., None]) * ops.exp(-log_scales)[..., None]
    levels = ops.arange(num_levels)
    return _bin_log_probs(standardised[..., :-1], standardised[..., 1:], levels == 0, levels == num_levels - 1)


def _components(params, log_scale_min):
    """(..., 3K) parameters -> log mixture weights, means, floored log-scales, each (..., K)."""
    logits, means, log_scales = ops.split(params, PARAMS_PER_COMPONENT, axis=-1)
    return ops.log_softmax(logits, axis=-1), means, ops.maximum(log_scales, log_scale_min)


def mixture_log_probs(params, num_levels, log_scale_min):
    """(..., 3K) parameters [mixture logits, means, log-scales] -> (..., L) log-probabilities:
    log-sum-exp over the components of log pi_k + log P_k(level)."""
    log_weights, means, log_scales = _components(params, log_scale_min)
    return ops.logsumexp(log_weights[..., None] + discretized_logistic_log_probs(means, log_scales, num_levels),
                         axis=-2)


def observed_level_log_probs(params, levels, num_levels, log_scale_min):
    """log P(observed level) only: (..., 3K) parameters and (...) integer levels in [0, L) -> (...).

    What training needs, K logistics per value instead of K x L (PixelCNN++'s loss); the same edges,
    tails, floor and log-sum-exp as `mixture_log_probs`, so it equals that output at `levels` to
    float32 rounding (for L = 2 too: it is log p(level), not the Bernoulli logit)."""
    log_weights, means, log_scales = _components(params, log_scale_min)
    k = ops.cast(levels, params.dtype)[..., None]
    inverse_scales = ops.exp(-log_scales)
    lower = (_level_edges(k, num_levels) - means) * inverse_scales
    upper = (_level_edges(k + 1.0, num_levels) - means) * inverse_scales
    per_component = _bin_log_probs(lower, upper, k == 0.0, k == num_levels - 1.0)
    return ops.logsumexp(log_weights + per_component, axis=-1)


@keras.saving.register_keras_serializable(package="pixel_keras")
class DiscretizedLogisticMixture(keras.layers.Layer):
    """Per-channel mixture of discretized logistics: (..., 3K) parameters -> (..., num_levels)
    normalised log-probabilities (for num_levels == 2: (...) Bernoulli logits). Pointwise, no weights.

    Args:
        num_levels: L >= 2 discrete values per channel.
        num_mixtures: K >= 1 logistic components.
        log_scale_min: floor of the log-scales (PixelCNN++: -7), so no bin's probability saturates.
    """

    def __init__(self, num_levels, num_mixtures=5, log_scale_min=-7.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_levels, int) or isinstance(num_levels, bool) or num_levels < 2:
            raise ValueError(f"Expected num_levels to be an integer >= 2. Received num_levels={num_levels!r}.")
        check_positive_int("num_mixtures", num_mixtures)
        if not isinstance(log_scale_min, (int, float)) or isinstance(log_scale_min, bool):
            raise ValueError(f"Expected log_scale_min to be a number. Received log_scale_min={log_scale_min!r}.")
        self.num_levels = num_levels
        self.num_mixtures = num_mixtures
        self.log_scale_min = float(log_scale_min)

    def build(self, input_shape):
        if input_shape[-1] != PARAMS_PER_COMPONENT * self.num_mixtures:
            raise ValueError(
                f"Expected {PARAMS_PER_COMPONENT * self.num_mixtures} parameters per channel "
                f"(3 x num_mixtures={self.num_mixtures}) in the last axis. Received input_shape={input_shape}."
            )

    def call(self, params):
        params = ops.cast(params, "float32")  # the tails and log1mexp need float32 even under mixed precision
        log_probs = mixture_log_probs(params, self.num_levels, self.log_scale_min)
        if self.num_levels == 2:
            return log_probs[..., 1] - log_probs[..., 0]
        return log_probs

    def compute_output_shape(self, input_shape):
        if self.num_levels == 2:
            return tuple(input_shape[:-1])
        return tuple(input_shape[:-1]) + (self.num_levels,)

    def compute_output_spec(self, params):
        # `call` returns float32 under any policy; the symbolic output must say so too.
        return keras.KerasTensor(self.compute_output_shape(params.shape), dtype="float32")

    def get_config(self):
        return {**super().get_config(), "num_levels": self.num_levels, "num_mixtures": self.num_mixtures,
                "log_scale_min": self.log_scale_min}


@keras.saving.register_keras_serializable(package="pixel_keras")
class MixtureNegativeLogLikelihood(keras.losses.Loss):
    """`NegativeLogLikelihood` (bits per dimension, batch mean) of a logistic mixture head scored
    from its parameters: y_pred (batch, H, W, C, 3K) as the layer "head_params" gives them, y_true
    the integer images. Only the observed level's bin is evaluated (`observed_level_log_probs`), so
    a step costs K logistics per value instead of K x num_levels; the value equals the full head's
    NLL to float32 rounding, NaN for an image with a target outside [0, num_levels) or not an integer.

    Args:
        num_levels: L >= 2, the head's.
        log_scale_min: the head's log-scale floor.
    """

    def __init__(self, num_levels, log_scale_min=-7.0, name="nll_bits_per_dim", **kwargs):
        super().__init__(name=name, **kwargs)
        if not isinstance(num_levels, int) or isinstance(num_levels, bool) or num_levels < 2:
            raise ValueError(f"Expected num_levels to be an integer >= 2. Received num_levels={num_levels!r}.")
        self.num_levels = num_levels
        self.log_scale_min = float(log_scale_min)

    def call(self, y_true, y_pred):
        values = ops.cast(y_true, "float32")
        levels = ops.cast(ops.clip(ops.round(values), 0.0, self.num_levels - 1.0), "int32")
        log_probs = observed_level_log_probs(ops.cast(y_pred, "float32"), levels, self.num_levels, self.log_scale_min)
        nats = -ops.sum(log_probs, axis=(1, 2, 3))
        nats = ops.where(targets_in_range(values, self.num_levels), nats, float("nan"))
        return bits_per_dim_from_nats(nats, y_true.shape[1:4])

    def get_config(self):
        return {**super().get_config(), "num_levels": self.num_levels, "log_scale_min": self.log_scale_min}


def _parameters_instead_of_probabilities(layer, *args, **kwargs):
    """`clone_model`'s call_function: every mixture head passes its parameters through."""
    return args[0] if isinstance(layer, DiscretizedLogisticMixture) else layer(*args, **kwargs)


def parameter_view(model):
    """(view, num_levels, log_scale_min) for a model with logistic mixture heads, None otherwise.

    The view is a functional model on the same inputs that shares every layer (and weight) of
    `model` but stops before the heads' per-level log-probabilities, outputting their parameters
    (batch, H, W, C, 3K) (a multi-scale model's stages merged as its logits are). Evaluating only the
    observed level from these (`heads.observed_level_log_probs`) costs K logistics per sub-pixel
    instead of K x num_levels, with the same value to float32 rounding.

    Raises:
        ValueError: for mixture heads with different levels or log-scale floors.
    """
    heads = [layer for layer in all_layers(model) if isinstance(layer, DiscretizedLogisticMixture)]
    if not heads:
        return None
    settings = {(head.num_levels, head.log_scale_min) for head in heads}
    if len(settings) != 1:
        raise ValueError("Expected one (num_levels, log_scale_min) for every mixture head. "
                         f"Received {sorted(settings)}.")
    num_levels, log_scale_min = settings.pop()
    view = keras.models.clone_model(model, clone_function=lambda layer: layer,
                                    call_function=_parameters_instead_of_probabilities, recursive=True)
    return view, num_levels, log_scale_min
