"""The architecture registry: every arch `build_model` can build, the built-in five and any a user
registers (`register_arch(Arch(...))`).

An `Arch` says how to build its blocks and everything else that used to be spread over the
package: its CPU default size and minutes (the training app's defaults), its shape constraints, how
its blocks take conditioning, the `--arch` help line, and the layer cases Keras' layer-test harness
runs on it. `build_model`, `cpu_defaults`, the apps and the tests read it, so a new arch is one
layer file and one `register_arch` call: the tests that enumerate archs enumerate `arch_names()`.

No Keras here: the apps check and list `--arch` without importing TensorFlow. The built-ins'
builders (`pixel_keras.blocks`) load on first use.
"""

import dataclasses
import re
from typing import Callable, Optional

from pixel_keras.registry import Registry

# How an arch's blocks take conditioning (class labels, a multi-scale map). Every block builder
# gets `spec.condition(units, name)`: a bias tensor of `units` features, or None when the model is
# unconditional. What the builder does with it:
CONDITIONING = {
    "layer_argument": "passes it as its layer's `conditioning=` argument (every built-in arch)",
    "added": "adds the bias to its pre-activations itself (an Add layer of a user's block)",
    None: "takes none: the arch builds unconditional models only",
}
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")  # names layers, run directories and --arch values


@dataclasses.dataclass(frozen=True, kw_only=True)
class Arch:
    """One architecture.

    Fields:
        name: lowercase identifier (`[a-z][a-z0-9_]*`); the model's and its layers' name prefix.
        build_block: `build_block(x, index, spec) -> output`: block `index` of the stream `x`
            (functional Keras tensors); the output has x's features (the residual adds it). `spec`
            is a `BlockSpec` (arch, hidden, color_channels, condition, state). It must be causal: the
            tests check exact Jacobians, normalisation, fast == plain sampling and the codec.
        description: one line for `--arch` help.
        cpu_size: (layers, hidden) that trains usefully on a 2-core CPU (the app's default).
        cpu_minutes: default training minutes of the app.
        conditioning: a key of `CONDITIONING`: how `build_block` takes `spec.condition`.
        check_shape: `check_shape(image_shape)` raising a one-line ValueError for a shape the arch
            cannot model (e.g. the Diagonal BiLSTM's width >= height); None: any shape.
        build_input: `build_input(x, spec) -> stream` from the scaled images (batch, H, W, C);
            None: a 7 x 7 mask-A convolution to 2h features named "input_conv" (the paper's).
        layer_cases: keyword arguments of Keras' `run_layer_test` (plus "name") for the arch's own
            layers, or a function returning them (so that they can name Keras classes lazily);
            tests/test_layer_harness.py runs each.
    """

    name: str
    build_block: Callable
    description: str
    cpu_size: tuple
    cpu_minutes: float
    conditioning: Optional[str]
    check_shape: Optional[Callable] = None
    build_input: Optional[Callable] = None
    layer_cases: object = ()

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"Expected an arch name matching [a-z][a-z0-9_]*. Received name={self.name!r}.")
        for field in ("build_block", "check_shape", "build_input"):
            value = getattr(self, field)
            if not callable(value) and not (value is None and field != "build_block"):
                raise ValueError(f"Expected Arch {self.name!r} {field} to be a function. Received {field}={value!r}.")
        if not isinstance(self.description, str) or not self.description.strip():
            raise ValueError(f"Expected Arch {self.name!r} description to be a non-empty string. "
                             f"Received description={self.description!r}.")
        size = self.cpu_size
        if (not isinstance(size, tuple) or len(size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
            raise ValueError(f"Expected Arch {self.name!r} cpu_size to be (layers, hidden), positive integers. "
                             f"Received cpu_size={size!r}.")
        minutes = self.cpu_minutes
        if not isinstance(minutes, (int, float)) or isinstance(minutes, bool) or not minutes > 0:
            raise ValueError(f"Expected Arch {self.name!r} cpu_minutes to be a positive number. "
                             f"Received cpu_minutes={minutes!r}.")
        if self.conditioning not in CONDITIONING:
            raise ValueError(f"Expected Arch {self.name!r} conditioning to be one of {tuple(CONDITIONING)}. "
                             f"Received conditioning={self.conditioning!r}.")

    def layer_tests(self):
        """The `run_layer_test` cases of the arch's layers (a list of dicts with a "name")."""
        cases = self.layer_cases() if callable(self.layer_cases) else self.layer_cases
        return [dict(case) for case in cases]


@dataclasses.dataclass
class BlockSpec:
    """What a block builder gets besides the stream: the arch's name (its layers' name prefix), h,
    the colour groups of the masks, the conditioning (`condition(units, name)`: a bias tensor or
    None) and `state`, a dict the arch's `build_input` and blocks share (e.g. the Gated PixelCNN's
    vertical stack)."""

    arch: str
    hidden: int
    color_channels: int
    condition: Callable
    state: dict = dataclasses.field(default_factory=dict)


ARCH_REGISTRY = Registry("arch", str, Arch)
BUILTIN_NAMES = ("pixelcnn", "row_lstm", "diagonal_bilstm", "spatial_lstm", "gated_pixelcnn", "pixelsnail")


def register_arch(arch, replace=False):
    """Add `arch` to the registry (`build_model(arch.name, ...)` builds it); returns it.

    Args:
        arch: the `Arch`.
        replace: replace a user arch registered under the same name (never a built-in).

    Raises:
        TypeError: for anything but an `Arch`.
        ValueError: for a name registered already (without `replace=True`) or a built-in one.
    """
    return ARCH_REGISTRY.register(getattr(arch, "name", None), arch, replace=replace)


def unregister_arch(name):
    """Remove a user arch from the registry (ValueError for a built-in or unknown one)."""
    ARCH_REGISTRY.unregister(name)


def get_arch(name):
    """The registered `Arch` named `name`; a one-line ValueError naming the choices otherwise."""
    return ARCH_REGISTRY.get(name)


def arch_names():
    """Names of the registered archs, the built-ins first, then in registration order."""
    return ARCH_REGISTRY.names()


def resolve_arch(reference):
    """The registered arch name that `reference` gives: a name, or "package.module:name" (the
    module is imported, registering its archs, then the name looked up): what `--arch` takes.

    Raises:
        ValueError: one line, for a module that cannot be imported or a name not registered.
    """
    return ARCH_REGISTRY.resolve(reference)


def _builtin(function):
    """A built-in's builder, imported from `pixel_keras.blocks` (Keras) when first called."""

    def call(*args, **kwargs):
        from pixel_keras import blocks

        return getattr(blocks, function)(*args, **kwargs)

    call.__name__ = call.__qualname__ = function
    return call


def _width_at_least_height(image_shape):
    height, width = image_shape[:2]
    if width < height:
        raise ValueError(f"diagonal_bilstm needs width >= height. Received image_shape={tuple(image_shape)}.")


# Built-in CPU sizes and minutes (were `cpu_defaults.CPU_SIZES` / `CPU_MINUTES`): sizes that train
# usefully on a 2-core CPU within the default time budget (the paper's sizes, 12 layers of h = 128,
# are `--layers 12 --hidden 128`). PixelCNN's 6 x 48 by measurement (issue 15, BUILD_NOTES.md):
# better than 5 x 32 at the main command's 20 minutes with the cosine ending there. Minutes such
# that a whole default run (with the final test evaluation and gallery, ~3x slower for the Diagonal
# BiLSTM, ~1.6x for the Spatial LSTM than for the Row LSTM) ends within 30 minutes on a 2-core CPU.
for _arch in (
    Arch(name="pixelcnn", build_block=_builtin("pixelcnn_block"), cpu_size=(6, 48), cpu_minutes=20.0,
         description="PixelCNN: residual blocks of masked convolutions (1 x 1, 3 x 3, 1 x 1)",
         conditioning="layer_argument", layer_cases=_builtin("masked_conv_cases")),
    *(Arch(name=name, build_block=_builtin("recurrent_block"), cpu_size=(3, 32), cpu_minutes=minutes,
           description=description, conditioning="layer_argument", check_shape=check,
           layer_cases=_builtin(f"{name}_cases"))
      for name, minutes, description, check in (
          ("row_lstm", 20.0, "Row LSTM: a row at a time, a triangular context", None),
          ("diagonal_bilstm", 15.0, "Diagonal BiLSTM: two diagonal scans, the whole context (width >= height)",
           _width_at_least_height),
          ("spatial_lstm", 18.0, "Spatial LSTM (RIDE): a 2-D LSTM, one pixel at a time", None))),
    Arch(name="gated_pixelcnn", build_block=_builtin("gated_block"), cpu_size=(5, 32), cpu_minutes=20.0,
         description="Gated PixelCNN: vertical and horizontal stacks, gated units, no blind spot",
         conditioning="layer_argument", build_input=_builtin("gated_input"), layer_cases=_builtin("gated_cases")),
    Arch(name="pixelsnail", build_block=_builtin("pixelsnail_block"), cpu_size=(4, 32), cpu_minutes=20.0,
         description="PixelSNAIL: residual masked convolutions and causal self-attention over all earlier pixels",
         conditioning="layer_argument", layer_cases=_builtin("pixelsnail_cases")),
):
    ARCH_REGISTRY.register(_arch.name, _arch, builtin=True)
assert arch_names() == BUILTIN_NAMES
