"""The head registry: every output head `build_model` can put on a model, the built-in two and any a
user registers (`register_head(Head(...))`).

A `Head` says what the last masked 1 x 1 convolution's features mean, in one place: how many it
needs per colour channel, the model output built from them, how a built model is recognised as
having it, and how to score the observed level (the one path that training, `pk.log_prob`,
`pk.ood` and the SavedModel's `log_likelihood` all take, so they give the same numbers). A new head
is one module and one `register_head` call: `build_model(head=...)`, `training.run --head`, the
losses and the scorers read the registry.

No Keras here (the apps list `--head` without importing TensorFlow); the built-ins' functions live
in `pixel_keras.heads` and load on first use.
"""

import dataclasses
import re
from typing import Callable, Optional

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Head:
    """One output head.

    Fields:
        name: lowercase identifier (`build_model(head=name)`, `--head name`).
        description: one line for `--head` help.
        features_per_channel: `features_per_channel(num_levels, num_mixtures) -> int`, the head
            convolution's features for each colour channel (`num_mixtures` is the one head option
            `build_model` passes; a head without options ignores it).
        build_output: `build_output(features, image_shape, num_levels, num_mixtures) -> output`
            (functional Keras): the model's output from the head convolution's (batch, H, W, C *
            per-channel) features, its last layer named "logits", float32 under any policy:
            per-level logits or normalised log-probabilities (batch, H, W, C, L), or Bernoulli logits
            (batch, H, W, C) for 2 levels (what sampling, the codec and export read).
        in_model: `in_model(model) -> bool`, whether a built (or loaded) model has this head; None
            for the default head, which a model has when no other head claims it.
        observed_view: `observed_view(model) -> ObservedView`: how to score the observed level.
    """

    name: str
    description: str
    features_per_channel: Callable
    build_output: Callable
    observed_view: Callable
    in_model: Optional[Callable] = None


@dataclasses.dataclass(frozen=True)
class ObservedView:
    """A model's observed-level scoring: `model` (the same inputs and weights as the model; the
    model itself when its output suffices) whose output `log_probs(output, images)` turns into the
    (batch, H, W, C) float32 nats log p(x_i | x_<i) of the observed sub-pixels, and `loss`, the
    Keras loss (bits per dimension, y_true the images) on that output that training fits."""

    model: object
    log_probs: Callable
    loss: object


_HEADS = {}
DEFAULT_HEAD = "categorical"


def register_head(head):
    """Add `head` (a `Head`) to the registry; returns it. Refuses a taken or malformed name and a
    second default head (in_model None) with one line."""
    if not isinstance(head, Head):
        raise TypeError(f"Expected a pixel_keras.Head. Received {head!r}.")
    if not isinstance(head.name, str) or not _NAME.match(head.name):
        raise ValueError(f"Expected a head name matching [a-z][a-z0-9_]*. Received name={head.name!r}.")
    if head.name in _HEADS:
        raise ValueError(f"A head named {head.name!r} is already registered; registered: {head_names()}.")
    for field in ("features_per_channel", "build_output", "observed_view"):
        if not callable(getattr(head, field)):
            raise TypeError(f"Expected head {head.name!r}'s {field} to be callable. Received {getattr(head, field)!r}.")
    if head.in_model is None and DEFAULT_HEAD in _HEADS:
        raise ValueError(f"Head {head.name!r} needs in_model (how a built model is known to have it); only the "
                         f"default head {DEFAULT_HEAD!r} goes without.")
    _HEADS[head.name] = head
    return head


def unregister_head(name):
    """Remove a user head from the registry (the built-ins stay)."""
    if name in BUILTIN_HEADS:
        raise ValueError(f"Head {name!r} is a built-in head; it cannot be unregistered.")
    get_head(name)
    del _HEADS[name]


def head_names():
    """The registered heads' names, in registration order (the built-ins first)."""
    return tuple(_HEADS)


def get_head(name):
    """The registered `Head` called `name`; a one-line ValueError naming the registered ones otherwise."""
    if not isinstance(name, str) or name not in _HEADS:
        raise ValueError(f"Expected head to be one of {head_names()}. Received head={name!r}.")
    return _HEADS[name]


def head_of(model):
    """The `Head` a built or loaded model has: the first registered head whose `in_model` claims
    it, else the default (categorical)."""
    for head in _HEADS.values():
        if head.in_model is not None and head.in_model(model):
            return head
    return _HEADS[DEFAULT_HEAD]


def _builtin(function):
    """A built-in's function from `pixel_keras.heads` (Keras), imported when first called."""

    def call(*args, **kwargs):
        from pixel_keras import heads

        return getattr(heads, function)(*args, **kwargs)

    call.__name__ = call.__qualname__ = function
    return call


register_head(Head(name="categorical", description="softmax / sigmoid per sub-pixel (the paper's)",
                   features_per_channel=_builtin("categorical_features"), build_output=_builtin("categorical_output"),
                   observed_view=_builtin("categorical_observed_view")))
register_head(Head(name="logistic_mixture",
                   description="per channel, a mixture of discretized logistics (after PixelCNN++)",
                   features_per_channel=_builtin("mixture_features"), build_output=_builtin("mixture_output"),
                   observed_view=_builtin("mixture_observed_view"), in_model=_builtin("has_mixture_head")))
BUILTIN_HEADS = head_names()
