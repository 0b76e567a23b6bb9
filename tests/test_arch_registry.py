"""The architecture registry: a user arch defined here, outside the package, registered with one
call, runs through the generic tests (causality, normalisation, fast == plain, chi-square, codec
round trip, Keras' layer harness) unedited: they parametrize over `pk.arch_names()` when collected.

`test_generic_tests_pass_on_a_user_arch` runs them in a pytest subprocess that loads this module
as a plugin (`-p tests.test_arch_registry`): its `pytest_configure` registers the arch before
collection, as a user's package would by registering at import. Bad registrations and bad shapes
are refused in one line. The README's "Adding an architecture" code is the block below, verbatim.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

from pixel_keras import archs, cpu_defaults

ROOT = pathlib.Path(__file__).resolve().parents[1]

# README: Adding an architecture (kept verbatim there; test_readme_shows_this_code checks it)
import keras  # noqa: E402

import pixel_keras as pk  # noqa: E402
from pixel_keras.layers import MaskedConv2D  # noqa: E402


def two_path_block(x, index, spec):
    """Block `index`: a 3 x 3 and a 1 x 5 (row) mask-B convolution summed, then a 1 x 1 back to 2h."""
    name = f"{spec.arch}{index}"  # layer names: unique per block
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    paths = [MaskedConv2D(spec.hidden, kernel, "B", spec.color_channels, name=f"{name}_{part}")(x)
             for kernel, part in ((3, "square"), ((1, 5), "row"))]
    bias = spec.condition(spec.hidden, f"{name}_condition")  # labels and/or a multi-scale map; None
    x = keras.layers.Add(name=f"{name}_sum")(paths if bias is None else paths + [bias])
    x = keras.layers.ReLU(name=f"{name}_sum_relu")(x)
    return MaskedConv2D(2 * spec.hidden, 1, "B", spec.color_channels, name=f"{name}_project")(x)


def at_least_two_columns(image_shape):
    if image_shape[1] < 2:
        raise ValueError(f"two_path needs width >= 2. Received image_shape={tuple(image_shape)}.")


TWO_PATH = pk.Arch(
    name="two_path", build_block=two_path_block, description="a square and a row path per block",
    cpu_size=(4, 32), cpu_minutes=10.0, conditioning="added", check_shape=at_least_two_columns,
    layer_cases=[dict(name="row_conv", layer_cls=MaskedConv2D, input_shape=(2, 3, 3, 6),
                      init_kwargs={"filters": 6, "kernel_size": (1, 5), "mask_type": "B", "color_channels": 3},
                      expected_output_shape=(2, 3, 3, 6), expected_num_trainable_weights=2)],
)
# README: end

# The generic tests of each property the registry promises a new arch (test module: what it checks).
GENERIC_MODULES = {
    "test_causality": "exact Jacobians: no output reads a later sub-pixel",
    "test_models": "normalisation over every tiny image, .keras round trip",
    "test_conditioning": "normalisation of a class-conditional model for every label",
    "test_fast_sampling": "fast == plain: logits and draws, completion, multi-scale",
    "test_sampling": "chi-square of samples against the model, completion",
    "test_codec": "codec round trip, batch-independent probabilities",
    "test_layer_harness": "Keras' layer harness on the arch's layers",
    "test_multiscale": "the multi-scale conditional stage's causality",
}


def pytest_configure(config):
    """Registers the user arch when this module is a pytest plugin (`-p tests.test_arch_registry`);
    a test module's hooks are not called otherwise."""
    if TWO_PATH.name not in pk.arch_names():
        pk.register_arch(TWO_PATH)


@pytest.fixture
def two_path():
    pk.register_arch(TWO_PATH)
    try:
        yield TWO_PATH
    finally:
        pk.unregister_arch(TWO_PATH.name)


def test_a_registered_arch_is_built_and_read_by_the_apps(two_path, tmp_path):
    from training.run import parse_args

    assert pk.arch_names()[-1] == "two_path" and pk.get_arch("two_path") is two_path
    model = pk.build_model("two_path", (3, 4, 1), 4, num_layers=2, hidden=4, num_classes=3)
    assert model.name == "two_path" and model.get_layer("two_path1_row").kernel_size == (1, 5)
    assert model.get_layer("two_path0_condition") is not None
    assert cpu_defaults.CPU_SIZES["two_path"] == (4, 32) and cpu_defaults.CPU_MINUTES["two_path"] == 10.0
    args = parse_args(["--arch", "two_path", "--run-dir", str(tmp_path / "run")])
    assert (args.layers, args.hidden, args.max_minutes) == (4, 32, 10.0)


def test_unregistered_arch_is_gone():
    assert "two_path" not in pk.arch_names() and "two_path" not in cpu_defaults.CPU_SIZES
    assert pk.arch_names() == archs.BUILTIN_NAMES


def test_help_lists_every_registered_arch(two_path, capsys):
    from training.run import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for name in pk.arch_names():
        assert f"{name} ({' '.join(pk.get_arch(name).description.split())})" in shown


def _one_line(error):
    text = str(error.value)
    assert "\n" not in text, text
    return text


def _fields(**changes):
    fields = dict(name="other", build_block=two_path_block, description="d", cpu_size=(1, 2), cpu_minutes=1.0,
                  conditioning=None)
    fields.update(changes)
    return {key: value for key, value in fields.items() if value is not ...}


@pytest.mark.parametrize("fields,error,message", [
    (_fields(name="pixelcnn"), ValueError, "'pixelcnn' is a built-in arch"),
    (_fields(name="two_path"), ValueError, "'two_path' is registered already"),
    (_fields(cpu_minutes=...), TypeError, "missing 1 required keyword-only argument: 'cpu_minutes'"),
    (_fields(build_block=...), TypeError, "'build_block'"),
    (_fields(build_block=None), ValueError, "build_block to be a function"),
    (_fields(name="Two Path"), ValueError, r"name matching \[a-z\]"),
    (_fields(cpu_size=(0, 32)), ValueError, "cpu_size to be \\(layers, hidden\\)"),
    (_fields(cpu_minutes=0), ValueError, "cpu_minutes to be a positive number"),
    (_fields(conditioning="bias"), ValueError, "conditioning to be one of"),
    (_fields(description=""), ValueError, "description to be a non-empty string"),
])
def test_bad_registrations_are_refused_in_one_line(two_path, fields, error, message):
    with pytest.raises(error) as caught:
        pk.register_arch(pk.Arch(**fields))
    assert re.search(message, _one_line(caught))
    # unchanged: the six built-ins, two_path last
    names = pk.arch_names()
    assert names[:6] == archs.BUILTIN_NAMES and names[-1] == "two_path" and "other" not in names


@pytest.mark.parametrize("call,message", [
    (lambda: pk.build_model("two_path", (3, 1, 1), 4), r"two_path needs width >= 2. Received image_shape=\(3, 1, 1\)"),
    (lambda: pk.build_model("three_path", (3, 3, 1), 4),
     r"Expected arch to be one of \(.*'two_path', 'other'\). Received arch='three_path'"),
    (lambda: pk.unregister_arch("row_lstm"), "'row_lstm' is a built-in arch"),
    (lambda: pk.build_model("other", (3, 3, 1), 4, num_classes=2), "'other' takes no conditioning"),
])
def test_bad_shapes_and_names_are_refused_in_one_line(two_path, call, message):
    pk.register_arch(pk.Arch(**_fields()))
    try:
        with pytest.raises(ValueError) as caught:
            call()
    finally:
        pk.unregister_arch("other")
    assert re.search(message, _one_line(caught))


def test_registry_module_loads_no_keras():
    """The apps check --arch with the registry before (or without) loading TensorFlow."""
    code = "import sys; from pixel_keras.archs import arch_names; print(arch_names(), 'keras' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.stdout.split(") ")[-1].strip() == "False", done.stdout + done.stderr[-2000:]
    assert archs.BUILTIN_NAMES == pk.arch_names()


def test_readme_shows_this_code():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Adding an architecture", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    source = pathlib.Path(__file__).read_text()
    ours = source.split("# README: Adding an architecture", 1)[1].split("\n", 1)[1].split("# README: end")[0]
    strip = re.compile(r"  # noqa: E402")
    assert strip.sub("", ours).strip() == block.strip()


@pytest.mark.slow
def test_generic_tests_pass_on_a_user_arch():
    """The generic test modules, unedited, collect and pass their two_path cases once the arch is
    registered (here by this module as a plugin): every property of GENERIC_MODULES is checked."""
    paths = [f"tests/{module}.py" for module in GENERIC_MODULES]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.test_arch_registry", "-k", "two_path", "-q", "-rA",
         "-p", "no:cacheprovider", *paths],
        cwd=ROOT, capture_output=True, text=True, timeout=1800, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    report = done.stdout
    assert done.returncode == 0, report[-4000:] + done.stderr[-2000:]
    passed = re.findall(r"^PASSED tests/(\w+)\.py::(\S+)", report, re.M)
    assert all("two_path" in test for _, test in passed), passed
    missing = set(GENERIC_MODULES) - {module for module, _ in passed}
    assert not missing, f"no two_path test passed in {missing}:\n{report[-4000:]}"
