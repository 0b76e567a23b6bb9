"""Installing pixel_keras claims no generic top-level names; the apps install as console scripts."""

import ast
import configparser
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.tiers import slow

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = {"pixel-keras-train", "pixel-keras-evaluate", "pixel-keras-sample", "pixel-keras-export",
           "pixel-keras-client", "pixel-keras-ood", "pixel-keras-codec", "pixel-keras-fetch-mnist"}
APPS = ("training", "export")


def _pip(*args, cwd):
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], cwd=cwd,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built offline from a copy of the sources (the build writes nothing into the checkout)."""
    folder = tmp_path_factory.mktemp("package")
    source = folder / "source"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml"):
        shutil.copy(ROOT / name, source / name)
    for package in ("pixel_keras",) + APPS:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    _pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(folder / "dist"), str(source), cwd=folder)
    (path,) = (folder / "dist").glob("pixel_keras-*.whl")
    return path


@slow
def test_wheel_holds_the_library_and_the_apps_under_our_names_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"pixel_keras", "pixel_keras_apps", "pixel_keras-0.1.0.dist-info"}
    for app in APPS:
        modules = {path.name for path in (ROOT / app).glob("*.py")}
        assert {name.rsplit("/", 1)[1] for name in names if name.startswith(f"pixel_keras_apps/{app}/")} == modules
    entry_points = configparser.ConfigParser()
    entry_points.read_string(zipfile.ZipFile(wheel).read("pixel_keras-0.1.0.dist-info/entry_points.txt").decode())
    assert set(entry_points["console_scripts"]) == SCRIPTS


@slow
def test_installed_console_scripts_run_without_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    _pip("install", "--no-deps", "--target", str(target), str(wheel), cwd=tmp_path)
    assert not (target / "training").exists() and not (target / "export").exists()
    assert {path.name for path in (target / "bin").iterdir()} >= SCRIPTS
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment["PYTHONPATH"] = str(target)
    # One real script, then every entry point in one process (one TensorFlow import, not five).
    done = subprocess.run([str(target / "bin" / "pixel-keras-train"), "--help"], cwd=tmp_path, env=environment,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "--arch" in done.stdout, done.stderr[-3000:]
    assert done.stdout.startswith("usage: pixel-keras-train "), done.stdout[:200]  # not "python -m training.run"
    check = f"""
import configparser, contextlib, io, sys
import pixel_keras_apps.training, pixel_keras_apps.export
assert pixel_keras_apps.training.__file__.startswith({str(target)!r}), pixel_keras_apps.training.__file__
points = configparser.ConfigParser()
points.read({str(next(target.glob("pixel_keras-*.dist-info")) / "entry_points.txt")!r})
for script, reference in points["console_scripts"].items():
    module, function = reference.split(":")
    sys.argv = [script, "--help"]
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        try:
            getattr(__import__(module, fromlist=[function]), function)()
        except SystemExit as exit:
            assert exit.code == 0, (script, exit.code)
    assert shown.getvalue().startswith(f"usage: {{script}} "), (script, shown.getvalue())
    print(script, "ok")
"""
    done = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count(" ok") == len(SCRIPTS)


def _absolute_imports(path):
    """Top-level package names a module imports absolutely (relative imports excluded)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_apps_import_each_other_only_relatively_and_the_library_no_app():
    for path in sorted(ROOT.glob("training/*.py")) + sorted(ROOT.glob("export/*.py")):
        assert not _absolute_imports(path) & {"training", "export", "benchmarks"}, path
    for path in sorted(ROOT.glob("pixel_keras/**/*.py")):
        assert not _absolute_imports(path) & {"training", "export", "benchmarks"}, path


@slow
def test_wheel_ships_the_pretrained_models(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted((ROOT / "pixel_keras" / "pretrained_models").glob("*.json"))
    assert shipped
    for record in shipped:
        for suffix in (".json", ".keras"):
            assert f"pixel_keras/pretrained_models/{record.stem}{suffix}" in names, (record.stem, suffix)


@slow
def test_any_submodule_can_be_a_programs_first_import():
    """A program whose first import is one of our submodules (a user's own arch file starts with
    `from pixel_keras.layers import MaskedConv2D`) gets it with no circular import, and every Keras
    object of ours is registered after `import pixel_keras.saving` (what a plain
    `keras.models.load_model` of our files needs)."""
    root = pathlib.Path(__file__).resolve().parents[1]
    for first in ("from pixel_keras.layers import MaskedConv2D", "from pixel_keras.models import build_model",
                  "import pixel_keras.incremental", "import pixel_keras.codec"):
        code = (f"{first}\nimport keras\nimport pixel_keras.saving\n"
                "assert keras.saving.get_registered_object('pixel_keras>DiscretizedLogisticMixture')")
        result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300,
                                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        assert result.returncode == 0, (first, result.stderr[-2000:])
