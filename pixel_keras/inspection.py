"""Model inspection: what a built or loaded model is, in public functions that every module asks
(image shape and levels, classes, head, multi-scale factor, layers), and the two questions only
Keras' private API answers (every nested layer; the graph's nodes by depth) behind one small
adapter at the end, so a Keras change breaks one place."""

from pixel_keras.layers.conditioning import Conditioning


def model_spec(model):
    """(image_shape, num_levels) of a model from `build_model`, read off its input and output."""
    image_shape = tuple(model.inputs[0].shape[1:])  # images come first; a conditional model's labels second
    output_rank = len(model.output_shape)
    num_levels = 2 if output_rank == 4 else model.output_shape[-1]
    return image_shape, num_levels


def all_layers(model):
    """Every layer of `model`, those of nested models (a multi-scale model's stages) included."""
    import keras

    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)


def num_classes_of(model):
    """K of a class-conditional model (second input `labels`), None for an unconditional model."""
    if not any(tensor.name == "labels" for tensor in model.inputs):
        return None
    classes = {layer.num_classes for layer in all_layers(model)  # nested stages (multi-scale) included
               if isinstance(layer, Conditioning) and layer.num_classes}
    if len(classes) != 1:
        raise ValueError(f"A model with a `labels` input needs one label Conditioning size. Found {sorted(classes)}.")
    return classes.pop()


def head_of(model):
    """The model's `head_registry.Head` (categorical unless another registered head claims it)."""
    from pixel_keras.head_registry import head_of as registered_head_of

    return registered_head_of(model)


def multiscale_factor(model):
    """f of a model from `build_multiscale_model`; None for a single-scale model."""
    from pixel_keras.multiscale import multiscale_factor as factor_of

    return factor_of(model)


# The adapter: Keras-private calls, here only.

def nested_layers(model):
    """Every layer inside `model`, depth first, layers' own sublayers included (Keras'
    `_flatten_layers(include_self=False, recursive=True)`; the codec fingerprints in this order)."""
    return list(model._flatten_layers(include_self=False, recursive=True))


def nodes_by_depth(model):
    """{depth: [Node]} of a functional model's graph, deepest (the inputs) first when sorted in
    reverse (Keras' `Functional._nodes_by_depth`): the incremental walk's order."""
    return model._nodes_by_depth
