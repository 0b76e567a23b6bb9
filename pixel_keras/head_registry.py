"""The head registry: every output head `build_model` can put on a model, the built-in two and any a
user registers (`register_head(Head(...))`), and the dispatch through it (the head convolution's
size, the model output, the observed-level view of a built model).

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

from pixel_keras.checks import check_positive_int
from pixel_keras.deprecation import moved, no_attribute
from pixel_keras.registry import Registry

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
DEFAULT_HEAD = "categorical"


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
        observed_view: `observed_view(model) -> pixel_keras.ObservedView`: how to score the
            observed level.

    Raises:
        ValueError: naming the field, for a malformed name or a field that is not a function.
    """

    name: str
    description: str
    features_per_channel: Callable
    build_output: Callable
    observed_view: Callable
    in_model: Optional[Callable] = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"Expected a head name matching [a-z][a-z0-9_]*. Received name={self.name!r}.")
        for field in ("features_per_channel", "build_output", "observed_view", "in_model"):
            value = getattr(self, field)
            if not callable(value) and not (value is None and field == "in_model"):
                raise ValueError(f"Expected Head {self.name!r} {field} to be a function. Received {field}={value!r}.")


HEAD_REGISTRY = Registry("head", str, Head)


def __getattr__(name):
    if name == "ObservedView":  # with the heads that make it (CHANGELOG.md); Keras, so loaded on first use
        from pixel_keras import heads

        return moved(__name__, name, heads)
    raise no_attribute(__name__, name)


def register_head(head, replace=False):
    """Add `head` (a `Head`) to the registry; returns it.

    Args:
        head: the `Head`.
        replace: replace a user head registered under the same name (never a built-in).

    Raises:
        TypeError: for anything but a `Head`.
        ValueError: for a name registered already (without `replace=True`) or a built-in one, and
            for a second default head (`in_model` None).
    """
    if isinstance(head, Head) and head.in_model is None and DEFAULT_HEAD in HEAD_REGISTRY:
        raise ValueError(f"Head {head.name!r} needs in_model (how a built model is known to have it); only the "
                         f"default head {DEFAULT_HEAD!r} goes without.")
    return HEAD_REGISTRY.register(getattr(head, "name", None), head, replace=replace)


def unregister_head(name):
    """Remove a user head from the registry (ValueError for a built-in or unknown one)."""
    HEAD_REGISTRY.unregister(name)


def head_names():
    """The registered heads' names, in registration order (the built-ins first)."""
    return HEAD_REGISTRY.names()


def get_head(name):
    """The registered `Head` called `name`; a one-line ValueError naming the registered ones otherwise."""
    return HEAD_REGISTRY.get(name)


def resolve_head(reference):
    """The registered head name that `reference` gives: a name, or "package.module:name" (the
    module is imported, registering its heads, then the name looked up): what `--head` takes.

    Raises:
        ValueError: one line, for a module that cannot be imported or a name not registered.
    """
    return HEAD_REGISTRY.resolve(reference)


def head_of(model):
    """The `Head` a built or loaded model has: the first registered head whose `in_model` claims
    it, else the default (categorical)."""
    for head in HEAD_REGISTRY.values():
        if head.in_model is not None and head.in_model(model):
            return head
    return get_head(DEFAULT_HEAD)


def observed_view(model):
    """The `ObservedView` of `model`'s head (`head_of`): the model to run, how its output becomes
    the observed sub-pixels' log-probabilities, and the training loss."""
    return head_of(model).observed_view(model)


def check_head(head, num_mixtures):
    """Validate `build_model`'s head arguments; raise ValueError quoting what was received."""
    get_head(head)
    check_positive_int("num_mixtures", num_mixtures)


def features_per_channel(head, num_levels, num_mixtures):
    """Features of the head convolution for each colour channel (the registered head's)."""
    return get_head(head).features_per_channel(num_levels, num_mixtures)


def head_output(features, head, image_shape, num_levels, num_mixtures):
    """The model's output from the head convolution's features (batch, H, W, C * per-channel), the
    registered head's `build_output`; its last layer is named "logits"."""
    return get_head(head).build_output(features, tuple(image_shape), num_levels, num_mixtures)


def _builtin(function):
    """A built-in's function from `pixel_keras.heads` (Keras), imported when first called."""

    def call(*args, **kwargs):
        from pixel_keras import heads

        return getattr(heads, function)(*args, **kwargs)

    call.__name__ = call.__qualname__ = function
    return call


HEAD_REGISTRY.register("categorical", Head(
    name="categorical", description="softmax / sigmoid per sub-pixel (the paper's)",
    features_per_channel=_builtin("categorical_features"), build_output=_builtin("categorical_output"),
    observed_view=_builtin("categorical_observed_view")), builtin=True)
HEAD_REGISTRY.register("logistic_mixture", Head(
    name="logistic_mixture", description="per channel, a mixture of discretized logistics (after PixelCNN++)",
    features_per_channel=_builtin("mixture_features"), build_output=_builtin("mixture_output"),
    observed_view=_builtin("mixture_observed_view"), in_model=_builtin("has_mixture_head")), builtin=True)
BUILTIN_HEADS = head_names()
