"""Incremental (cached) evaluation of a functional model at one pixel: the fast sampler's step.

Sampling changes one value per step, so a step only needs every layer's output at the new position
(Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive Models"). This module
walks a functional model's graph once and gives each layer a *rule*: how to compute the layer's
output at pixel (row, col) from the pixel values of its inputs and a small per-layer state:

- the layers of this package that keep a window or a recurrent state (`MaskedConv2D`, `RowLSTM`,
  `DiagonalBiLSTM`, `SpatialLSTM`, `GatedBlock`) own their step, next to their `call` (the
  protocol in `pixel_keras.layers.incremental_step`): `LayerStepRule` drives it;
- pointwise layers (`Rescaling`, `ReLU`, `Add`, ...) apply at the pixel (`PointwiseRule`), and a
  per-pixel `Reshape` reshapes the pixel's features (`ReshapeRule`).

Inputs that do not depend on the image (class labels, a multi-scale conditioning map, and what is
computed from them) are evaluated once, whole; a layer that reads one of image size (H, W) gets it
at the pixel (or row) being computed, others are broadcast. A pixel value is a (batch, 1, 1,
features) map, so that Keras' own pointwise layers apply unchanged. `RULES` (a `Registry`) maps
layer classes to rules; other modules extend it with `register_rule` (a registered rule wins over the
protocol of the same class or a base class further up) and take theirs back with `unregister_rule`.
A layer with neither raises `NotImplementedError` naming its class.
"""

import collections

import keras
from keras import ops

from pixel_keras.heads import DiscretizedLogisticMixture
from pixel_keras.layers.incremental_step import PIXEL, ROW, IncrementalStep, in_compute_dtype, rows_at, single_stage
from pixel_keras.layers.masked_conv import MaskedConv2D
from pixel_keras.inspection import graph_nodes
from pixel_keras.registry import Registry

RULES = Registry("incremental rule", type)
__all__ = ["IncrementalModel", "LayerStepRule", "PIXEL", "PointwiseRule", "ROW", "RULES", "register_rule", "split_inputs",
           "unregister_rule"]


def register_rule(*layer_classes, replace=False):
    """Class decorator: use this rule for layers of `layer_classes` (and their subclasses).

    Args:
        *layer_classes: the Keras layer classes the rule computes.
        replace: replace a rule registered for one of them (never a built-in one).

    Raises:
        TypeError: for a layer class that is not a class.
        ValueError: for a class that has a rule already (without `replace=True`) or a built-in one.

    Example:

    >>> @register_rule(MyPointwiseLayer)
    ... class MyRule(PointwiseRule):
    ...     pass
    """

    def register(rule_class):
        for layer_class in layer_classes:
            RULES.register(layer_class, rule_class, replace=replace)
        return rule_class

    return register


def unregister_rule(layer_class):
    """Remove the rule registered for `layer_class` (ValueError for a built-in or unknown one)."""
    RULES.unregister(layer_class)


def rule_for(layer, image_shape):
    """The rule object of `layer`: the registered rule, or the incremental step, of its class or of
    its nearest base class that has one."""
    for cls in type(layer).__mro__:
        if cls in RULES:
            return RULES.get(cls)(layer, image_shape)
        if issubclass(cls, IncrementalStep) and "step" in vars(cls):  # the class owns its step
            return LayerStepRule(layer, image_shape)
    raise NotImplementedError(
        f"No incremental sampling rule for layer {layer.name!r} of class {type(layer).__name__}; "
        "register one with pixel_keras.incremental.register_rule, or sample with method='plain'."
    )


def _layer_arguments(node, values):
    """(args, kwargs) of a node's layer call from `values`, float tensors in the layer's compute dtype."""
    args, kwargs = node.arguments(values)
    return keras.tree.map_structure(lambda value: in_compute_dtype(node.layer, value), (args, kwargs))


class PointwiseRule:
    """A layer whose output at a pixel depends on its inputs at that pixel only: call it there."""

    # The layer's output at a pixel reads its inputs at that pixel alone and nothing else.
    pointwise = True

    def __init__(self, layer, image_shape):
        self.layer = layer
        self.image_shape = image_shape

    def start(self, batch):
        """The initial state (a tuple of tensors) for `batch` images; also reads the weights once."""
        return ()

    def output_stages(self, input_stages, num_outputs):
        """Stage of each output from the stages of the inputs (None: image-independent)."""
        return single_stage(self.layer, input_stages, num_outputs)

    def step(self, state, row, col, args, kwargs):
        """(state, output at pixel (row, col)) from the inputs' values at that pixel."""
        return state, self.layer(*args, **kwargs)

    def row_step(self, state, row, args, kwargs):
        """(state, output for the whole of row `row`, (batch, 1, W, ...)) from the inputs' rows."""
        return state, self.layer(*args, **kwargs)

    def end_row(self, state, row):
        """Called once row `row` is final in every layer's input."""
        return state


for _layer_class in (keras.layers.Rescaling, keras.layers.ReLU, keras.layers.Activation, keras.layers.Add,
                     keras.layers.Subtract, keras.layers.Multiply, keras.layers.Average, keras.layers.Maximum,
                     keras.layers.Minimum, keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.Identity,
                     keras.layers.Dropout, DiscretizedLogisticMixture):
    RULES.register(_layer_class, PointwiseRule, builtin=True)


class ReshapeRule(PointwiseRule):
    """A Reshape that keeps the (H, W) axes and reshapes the features of each pixel."""

    def __init__(self, layer, image_shape):
        super().__init__(layer, image_shape)
        if tuple(layer.target_shape[:2]) != tuple(layer.input.shape[1:3]):  # the model's (H, W), kept
            raise NotImplementedError(
                f"Reshape layer {layer.name!r} changes the image axes (target_shape={layer.target_shape}); "
                "only per-pixel reshapes have an incremental rule."
            )

    def step(self, state, row, col, args, kwargs):
        (pixel,) = args
        return state, ops.reshape(pixel, (-1, 1, 1) + tuple(self.layer.target_shape[2:]))

    def row_step(self, state, row, args, kwargs):
        (values,) = args
        return state, ops.reshape(values, (-1, 1, self.image_shape[1]) + tuple(self.layer.target_shape[2:]))


RULES.register(keras.layers.Reshape, ReshapeRule, builtin=True)


class LayerStepRule(PointwiseRule):
    """The rule of a layer that owns its incremental step (`pixel_keras.layers.incremental_step`):
    reads the layer's step weights once per walk and keeps them out of the walk's loop state."""

    pointwise = False

    def output_stages(self, input_stages, num_outputs):
        return self.layer.step_stages(list(input_stages))

    def start(self, batch):
        self.weights, state = self.layer.step_start(batch, self.image_shape[1])
        return state

    def step(self, state, row, col, args, kwargs):
        return self.layer.step(self.weights, state, col, *args, **kwargs)

    def row_step(self, state, row, args, kwargs):
        return self.layer.row_step(self.weights, state, *args, **kwargs)

    def end_row(self, state, row):
        return self.layer.end_of_row(self.weights, state)

    def write(self, state, col, pixel):
        """A `MaskedConv2D`'s window with its input `pixel` stored at column `col` (`commit`)."""
        return self.layer.step_write(state, col, pixel)


def split_inputs(model):
    """(images input, the other inputs) of a model. The images are its only input other than
    `labels`, or else the input named "images"; every other input (labels, the conditioning map of
    a multi-scale model's conditional stage) does not depend on the image being drawn."""
    named = [tensor for tensor in model.inputs if tensor.name != "labels"]
    if len(named) > 1:
        named = [tensor for tensor in named if tensor.name == "images"]
    if len(named) != 1 or len(model.outputs) != 1:
        raise NotImplementedError(
            f"Incremental sampling needs one image input (the only input besides `labels`, or one named "
            f"`images`) and one output. Received inputs {[t.name for t in model.inputs]} and "
            f"{len(model.outputs)} outputs."
        )
    return named[0], [tensor for tensor in model.inputs if tensor is not named[0]]


class IncrementalModel:
    """A functional model evaluated one pixel at a time.

    Use: `start(batch, labels)` -> (states, image-independent values); for each pixel in raster
    order, `step` once per colour channel (the logits there; channel c is right once channels < c
    of the pixel are in the image), then `commit` with the pixel's final values; `end_row` after the
    last pixel of a row.

    `image_shape` may have another height and width than the model's own (the codec codes any
    size): every rule computes one pixel or row from its own state, sized by `image_shape`, and
    the image-size context (a conditioning map) is given at that size.

    Every tensor that depends on the image has a stage: PIXEL (computed at each pixel) or ROW
    (computed for a whole row once the row is final, e.g. the Gated PixelCNN's vertical stack, whose
    output at row r sees all of row r and reaches predictions only shifted down a row).

    Raises:
        NotImplementedError: naming the layer class, for a layer with no rule.
    """

    def __init__(self, model, image_shape):
        self.model = model
        self.image_shape = tuple(image_shape)
        self.images_input, self.context_inputs = split_inputs(model)
        stages = {id(self.images_input): PIXEL}
        model_size = tuple(self.images_input.shape[1:3])  # (H, W) the model was built for
        spatial = set()  # image-independent tensors of image size that a plan entry reads
        self.global_nodes, self.plan = [], []
        for node in graph_nodes(model):
            input_stages = [stages.get(id(tensor)) for tensor in node.inputs]
            if not any(input_stages):
                self.global_nodes.append(node)
                continue
            spatial.update(id(tensor) for tensor, stage in zip(node.inputs, input_stages)
                           if stage is None and tuple(tensor.shape[1:3]) == model_size)
            rule = rule_for(node.layer, self.image_shape)
            output_stages = rule.output_stages(input_stages, len(node.outputs))
            stages.update((id(tensor), stage) for tensor, stage in zip(node.outputs, output_stages))
            self.plan.append((node, rule, set(filter(None, input_stages)) | set(output_stages)))
        self.spatial = spatial
        self.output = model.outputs[0]
        if stages.get(id(self.output)) != PIXEL:
            raise NotImplementedError("The model's output is not computed pixel by pixel from its images.")
        self.commit_plan = self._commit_plan()

    def _commit_plan(self):
        """The plan entries `commit` runs: what reads the image at a pixel before a convolution
        whose output there ignores the pixel's last channel (or is only computed at the row's end).
        None when that is not the structure (then `commit` runs the whole step again)."""
        channels = self.image_shape[2]
        prefix, entries = {id(self.images_input)}, []
        for node, rule, _ in self.plan:
            if not any(id(tensor) in prefix for tensor in node.inputs):
                continue
            layer = node.layer
            if (isinstance(rule, LayerStepRule) and isinstance(layer, MaskedConv2D)
                    and (layer.step_reads_row_right() or layer.step_ignores_last_channel(channels))):
                entries.append((node, rule, "write"))
            elif type(rule) is PointwiseRule or isinstance(rule, ReshapeRule):
                entries.append((node, rule, "step"))
                prefix.update(id(tensor) for tensor in node.outputs)
            else:
                return None
        return entries

    def start(self, batch, labels=None, context=None):
        """(states, values of the image-independent tensors) for `batch` images, from `labels` and
        `context` ({input name: value} of the other image-independent inputs, e.g. `conditioning_map`)."""
        context = {"labels": labels, **(context or {})}
        missing = [tensor.name for tensor in self.context_inputs if context.get(tensor.name) is None]
        if missing:
            raise ValueError(f"Expected values for the model inputs {missing}. Received {sorted(context)}.")
        values = {id(tensor): context[tensor.name] for tensor in self.context_inputs}
        for node in self.global_nodes:
            args, kwargs = node.arguments(values)
            self._store(values, node, node.layer(*args, **kwargs))
        return [rule.start(batch) for _, rule, _ in self.plan], values

    @staticmethod
    def _store(values, node, outputs):
        for tensor, value in zip(node.outputs, keras.tree.flatten(outputs)):
            values[id(tensor)] = value

    def _at(self, fixed, row, col=None):
        """The image-independent values with those of image size read at pixel (row, col), as
        (batch, 1, 1, ...), or at row `row`, as (batch, 1, W, ...), when `col` is None."""
        values = dict(fixed)
        for key in self.spatial:
            value = rows_at(fixed[key], row, 1)
            if col is not None:
                value = ops.slice(value, [0, 0, col] + [0] * (len(value.shape) - 3),
                                  [ops.shape(value)[0], 1, 1] + list(value.shape[3:]))
            values[key] = value
        return values

    def _run(self, states, fixed, pixel, stage, call, entries=None):
        """Run `call(rule, state, args, kwargs)` -> (state, outputs) over the plan entries of `stage`;
        inputs of the other stage read as None; `fixed` already read at the pixel or row (`_at`)."""
        values = collections.defaultdict(lambda: None, fixed)
        if pixel is not None:
            values[id(self.images_input)] = ops.cast(pixel, self.images_input.dtype)
        states = list(states)
        for index, (node, rule, stages) in enumerate(self.plan):
            if stage in stages:
                args, kwargs = _layer_arguments(node, values)
                states[index], outputs = call(rule, states[index], args, kwargs)
                self._store(values, node, outputs)
        return states, values

    def step(self, states, fixed, pixel, row, col):
        """(states, model output at pixel (row, col)) given the image `pixel` (batch, 1, 1, C)."""
        states, values = self._run(states, self._at(fixed, row, col), pixel, PIXEL,
                                   lambda rule, state, args, kwargs: rule.step(state, row, col, args, kwargs))
        return states, values[id(self.output)]

    def commit(self, states, fixed, pixel, row, col):
        """States with the pixel's final value (all channels) stored where later pixels read it."""
        if self.commit_plan is None:
            return self.step(states, fixed, pixel, row, col)[0]
        values = self._at(fixed, row, col)
        values[id(self.images_input)] = ops.cast(pixel, self.images_input.dtype)
        states = list(states)
        index_of = {id(node): index for index, (node, _, _) in enumerate(self.plan)}
        for node, rule, action in self.commit_plan:
            index = index_of[id(node)]
            args, kwargs = _layer_arguments(node, values)
            if action == "write":
                states[index] = rule.write(states[index], col, args[0])
                continue
            states[index], outputs = rule.step(states[index], row, col, args, kwargs)
            self._store(values, node, outputs)
        return states

    def end_row(self, states, fixed, row):
        """States after row `row` is final in every layer: the ROW stage computed for the row, then
        every rule's end-of-row update."""
        states, _ = self._run(states, self._at(fixed, row), None, ROW,
                              lambda rule, state, args, kwargs: rule.row_step(state, row, args, kwargs))
        return [rule.end_row(state, row) for state, (_, rule, _) in zip(states, self.plan)]
