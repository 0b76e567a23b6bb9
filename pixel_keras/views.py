"""Views of a model's layers: every layer (nested stages included), its head's observed-level view
(`observed_view`: what training, scoring and export evaluate), and the logistic mixture head's
parameter view behind it."""

import keras

from pixel_keras.heads import DiscretizedLogisticMixture
from pixel_keras.inspection import all_layers  # noqa: F401  (where it always was)


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


def observed_view(model):
    """The `head_registry.ObservedView` of `model`'s head (`head_registry.head_of`): the model to
    run, how its output becomes the observed sub-pixels' log-probabilities, and the training loss."""
    from pixel_keras.head_registry import head_of

    return head_of(model).observed_view(model)
