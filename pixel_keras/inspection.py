"""Model inspection: what a built or loaded model is, in public functions that every module asks
(image shape and levels, classes, layers), and the questions only Keras' private API answers
(every nested layer; the graph's nodes by depth and what each node calls with) behind one small
adapter at the end: the one module that touches Keras internals, so a Keras change breaks one place."""

import dataclasses

import keras

from pixel_keras.layers.conditioning import Conditioning


def model_spec(model):
    """(image_shape, num_levels) of a model from `build_model`, read off its input and output."""
    image_shape = tuple(model.inputs[0].shape[1:])  # images come first; a conditional model's labels second
    output_rank = len(model.output_shape)
    num_levels = 2 if output_rank == 4 else model.output_shape[-1]
    return image_shape, num_levels


def all_layers(model):
    """Every layer of `model`, those of nested models (a multi-scale model's stages) included."""
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


# The adapter: Keras-private calls, here only.

def nested_layers(model):
    """Every layer inside `model`, depth first, layers' own sublayers included (Keras'
    `_flatten_layers(include_self=False, recursive=True)`; the codec fingerprints in this order)."""
    return list(model._flatten_layers(include_self=False, recursive=True))


@dataclasses.dataclass(frozen=True)
class GraphNode:
    """One call of a layer in a functional model's graph (Keras' `Node`, read through its private
    attributes here only): the layer, the tensors it reads and writes, and `arguments(values)`,
    the call's (args, kwargs) with each input tensor replaced by `values[id(tensor)]`."""

    layer: object
    inputs: tuple
    outputs: tuple
    _node: object

    def arguments(self, values):
        return self._node.arguments.fill_in(values)


def graph_nodes(model):
    """The layer calls of a functional model, inputs first, in an order where every node comes
    after the nodes it reads (Keras' `Functional._nodes_by_depth`, deepest first): the
    incremental walk's order. Input placeholders are left out."""
    graph = model._nodes_by_depth
    return [GraphNode(node.operation, tuple(node.input_tensors), tuple(node.outputs), node)
            for depth in sorted(graph, reverse=True) for node in graph[depth] if not node.is_input]
