"""The package's requirements are ranges (one named exact pin), and constraints.txt, the exact set
CI installs, pins every one of them to a version inside its range."""

import ast
import pathlib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The one exact pin: the codec's range coder, whose bitstream is that version's.
EXACT_PIN_ALLOWED = {"constriction"}


def setup_requirements():
    """{"": install_requires, extra: its list} read from setup.py without running setup()."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    call = next(node.value for node in tree.body if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None) == "setup")
    tree.body = [node for node in tree.body if not (isinstance(node, ast.Expr) and node.value is call)]
    namespace = {}
    exec(compile(tree, "setup.py", "exec"), namespace)  # the module's constants, setup() not called
    keywords = {keyword.arg: eval(compile(ast.Expression(keyword.value), "setup.py", "eval"), namespace)
                for keyword in call.keywords}
    return {"": keywords["install_requires"], **keywords["extras_require"]}


def constraints():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def test_no_exact_pin_but_the_named_exception():
    pinned = sorted({f"[{extra}] {text}" for extra, texts in setup_requirements().items() for text in texts
                     if any(spec.operator in ("==", "===") for spec in Requirement(text).specifier)
                     and canonicalize_name(Requirement(text).name) not in EXACT_PIN_ALLOWED})
    assert pinned == []


def test_constraints_pin_every_requirement_inside_its_range():
    pins = constraints()
    outside = []
    for extra, texts in setup_requirements().items():
        for text in texts:
            requirement = Requirement(text)
            version = pins.get(canonicalize_name(requirement.name))
            if version is None or not requirement.specifier.contains(version, prereleases=True):
                outside.append(f"[{extra}] {text}: constraints.txt has {version}")
    assert outside == []


def test_the_core_install_has_no_backend_and_the_extras_name_theirs():
    """Keras 3's way: the core is Keras and what the library imports; each backend is an extra."""
    requirements = setup_requirements()
    names = {extra: {canonicalize_name(Requirement(text).name) for text in texts}
             for extra, texts in requirements.items()}
    backends = {"tensorflow", "jax", "jaxlib", "torch", "tensorflow-probability", "tf-keras"}
    assert not names[""] & backends and "keras" in names[""]
    assert {"tensorflow", "tensorflow-datasets", "tensorboard"} <= names["tensorflow"]
    assert names["jax"] == {"jax", "jaxlib"} and names["torch"] == {"torch"}
    assert {"tensorflow-probability", "tf-keras"} <= names["benchmarks"]
    assert not {"tensorflow-probability", "tf-keras"} & (names["tensorflow"] | names["jax"])
