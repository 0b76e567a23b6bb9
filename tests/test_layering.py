"""The library in layers (docs/design.md), and what the layers promise: import-linter's contracts
(pyproject.toml) hold with imports inside functions counted, there is no import cycle, the
Keras-free parts load no Keras, importing us changes nothing for other code (no import hook), a
refactor changes no number, and every moved name still works for one release with a warning."""

import os
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")


def _python(code, *args):
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=ENV)


def test_the_import_contracts_hold():
    """Layers, no app imported by the library, no Keras in the registries (pyproject.toml)."""
    lint = pathlib.Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout or "broken" not in done.stdout.split("Contracts:")[-1], done.stdout[-2000:]


def test_there_is_no_import_cycle():
    import grimp

    from benchmarks.structure import ROOTS, cycles

    graph = grimp.build_graph(*ROOTS, cache_dir=None)
    assert cycles(graph, {module for module in graph.modules if module.split(".")[0] in ROOTS}) == []


KERAS_FREE = ["import pixel_keras.archs", "import pixel_keras.cli", "import pixel_keras.head_registry",
              "import pixel_keras.io", "import pixel_keras.pretrained", "import pixel_keras.cpu_defaults",
              "import pixel_keras.settings", "import pixel_keras.data",
              "import pixel_keras as pk; pk.arch_names(); pk.head_names(); pk.pretrained_names()"]


@pytest.mark.slow
def test_the_keras_free_parts_load_no_keras():
    code = ("import sys\n" + "\n".join(KERAS_FREE) + "\n"
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))")
    done = _python(code)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr[-2000:]


_BROKEN_MODULE = """
import importlib.abc, importlib.machinery, sys

class Broken(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        return importlib.machinery.ModuleSpec(name, self) if name == "pixel_keras.ood" else None
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        raise RuntimeError("a bug in one of our modules")

sys.meta_path.insert(0, Broken())
import pixel_keras
import keras
print("keras" in sys.modules, keras.ops.add(1, 2))
"""


@pytest.mark.slow
def test_an_error_in_one_of_our_modules_never_breaks_import_keras():
    """Importing pixel_keras changes nothing in the interpreter: `import keras` afterwards is Keras'
    own, whatever state our modules are in (with an import hook, a raising module of ours made
    `import keras` raise)."""
    done = _python(_BROKEN_MODULE)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[0] == "True"


@pytest.mark.slow
def test_the_layers_package_loads_nothing_above_it():
    code = ("import sys\nfrom pixel_keras.layers import MaskedConv2D\n"
            "print(sorted(m for m in sys.modules if m.startswith('pixel_keras')))")
    done = _python(code)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(eval(done.stdout.strip().splitlines()[-1]))
    below = {"pixel_keras", "pixel_keras.masks", "pixel_keras.backend", "pixel_keras.checks", "pixel_keras.deprecation"}
    assert {m for m in loaded if not m.startswith("pixel_keras.layers")} <= below, sorted(loaded)


@pytest.mark.slow
def test_plain_keras_loads_our_files_after_the_documented_import():
    """`import pixel_keras.saving` registers our objects (the documented way for a plain
    `keras.models.load_model`); without it Keras does not know our layers, which is Keras' rule for
    any package's custom objects."""
    model_file = str(ROOT / "tests" / "data" / "pixelcnn_abbeaaa.keras")
    documented = _python("import sys, keras\nimport pixel_keras.saving\n"
                         "print(keras.models.load_model(sys.argv[1]).name)", model_file)
    assert documented.returncode == 0 and documented.stdout.strip(), documented.stderr[-2000:]
    plain = _python("import sys, keras\nimport pixel_keras\nkeras.models.load_model(sys.argv[1])", model_file)
    assert plain.returncode != 0 and "MaskedConv2D" in plain.stderr


BUILTIN_LOGITS = sorted((ROOT / "tests" / "data").glob("builtin_logits_*.npz"))


@pytest.mark.slow
@pytest.mark.parametrize("path", BUILTIN_LOGITS, ids=[path.stem for path in BUILTIN_LOGITS])
def test_every_builtin_arch_and_head_computes_the_stored_logits_bit_for_bit(path):
    """tests/fixture_makers/builtin_logits.py wrote these with the code of the commit in the name."""
    from tests.fixture_makers.builtin_logits import CASES, logits_of

    with np.load(path) as stored:
        assert len(stored.files) == len(CASES) + 1
        for arch, head in CASES:
            images, logits = logits_of(arch, head)
            np.testing.assert_array_equal(images, stored["images"])
            np.testing.assert_array_equal(logits, stored[f"{arch}_{head}"], err_msg=f"{arch} {head}")


# Keras' private API, as read today: Node internals, a Functional's graph, a layer's sublayers.
KERAS_PRIVATE = ("keras.src", "._flatten_layers", "._nodes_by_depth", ".arguments.fill_in", ".operation",
                 "._inbound_nodes", "._keras_history", "super(MaskedConv2D")


def test_only_inspection_touches_keras_internals():
    found = []
    for root in ("pixel_keras", "training", "export"):
        for path in sorted((ROOT / root).rglob("*.py")):
            if path == ROOT / "pixel_keras" / "inspection.py":
                continue
            text = path.read_text()
            found += [f"{path.relative_to(ROOT)}: {name}" for name in KERAS_PRIVATE if name in text]
    assert found == []


# Moved names: (module, name, the module it lives in now). Each works for one release, warning.
MOVED = [("pixel_keras.likelihood", "model_spec", "pixel_keras.inspection"),
         ("pixel_keras.likelihood", "num_classes_of", "pixel_keras.inspection"),
         ("pixel_keras.likelihood", "all_layers", "pixel_keras.inspection"),
         ("pixel_keras.likelihood", "bits_per_dim_from_nats", "pixel_keras.losses"),
         ("pixel_keras.likelihood", "NegativeLogLikelihood", "pixel_keras.losses"),
         ("pixel_keras.likelihood", "nll_bits_per_dim", "pixel_keras.losses"),
         ("pixel_keras.likelihood", "log_prob_from_logits", "pixel_keras.losses"),
         ("pixel_keras.likelihood", "probabilities_from_logits", "pixel_keras.losses"),
         ("pixel_keras.views", "observed_view", "pixel_keras.head_registry"),
         ("pixel_keras.views", "parameter_view", "pixel_keras.heads"),
         ("pixel_keras.views", "all_layers", "pixel_keras.inspection"),
         ("pixel_keras.fitting", "MixtureNegativeLogLikelihood", "pixel_keras.heads"),
         ("pixel_keras.models", "RECURRENT_LAYERS", "pixel_keras.blocks"),
         ("pixel_keras.codec", "main", "pixel_keras.codec.cli"),
         ("pixel_keras.head_registry", "ObservedView", "pixel_keras.heads")]


@pytest.mark.parametrize("old,name,new", MOVED, ids=[f"{old}.{name}" for old, name, _ in MOVED])
def test_a_moved_name_still_works_with_a_deprecation_warning(old, name, new):
    import importlib

    with pytest.warns(DeprecationWarning, match=f"{old}.{name} is deprecated: use {new}.{name}"):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), name)


@pytest.mark.parametrize("module", ["pixel_keras", "pixel_keras.models", "pixel_keras.settings"])
def test_archs_is_deprecated_for_arch_names(module):
    import importlib

    with pytest.warns(DeprecationWarning, match=f"{module}.ARCHS is deprecated: use pixel_keras.arch_names()"):
        value = importlib.import_module(module).ARCHS
    from pixel_keras.archs import BUILTIN_NAMES

    assert value == BUILTIN_NAMES


def test_the_codec_cli_module_is_deprecated():
    import importlib

    sys.modules.pop("pixel_keras.codec_cli", None)
    with pytest.warns(DeprecationWarning, match="pixel_keras.codec.cli"):
        old = importlib.import_module("pixel_keras.codec_cli")
    from pixel_keras.codec import cli

    assert old.main is cli.main


def test_an_unknown_name_is_still_an_attribute_error():
    import pixel_keras.likelihood

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError, match="has no attribute 'nope'"):
            pixel_keras.likelihood.nope
