"""A user's arch named on the command line: `python -m training.run --arch package.module:NAME` (and
`--head package.module:NAME`) imports the module, which registers it, then trains it. run.json records
the reference as given, so that a resumed run imports the module again. A reference that fails (no
such module, a name the module does not register) is one `error:` line and exit 2, before TensorFlow
loads where the module itself does not load it."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tests.tiers import slow
from training import run as training_run

ROOT = pathlib.Path(__file__).resolve().parents[1]
REFERENCE = "tests.plugin_arch:plugin_two_path"
HEAD = "pixel_keras.head_registry:categorical"  # a head reference too: the module is the built-ins'
TINY = ["--dataset", "digits", "--layers", "1", "--hidden", "8", "--batch-size", "16", "--validation-images", "16",
        "--gallery-size", "2", "--head", HEAD, "--lr-schedule", "constant"]  # constant: a resume trains on


def _train(run_dir, steps):
    """`python -m training.run --arch REFERENCE` for `steps` steps in a subprocess (the module is
    imported there only: this test process's registry never holds the plugin's arch)."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "training.run", "--arch", REFERENCE, *TINY, "--steps", str(steps),
                           "--run-dir", str(run_dir)], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(run directory, completed process) of one 3-step run of the plugin's arch."""
    run_dir = tmp_path_factory.mktemp("user_arch") / "run"
    return run_dir, _train(run_dir, 3)


@slow
def test_a_user_arch_named_by_its_module_trains(trained):
    run_dir, done = trained
    assert done.returncode == 0, done.stderr[-3000:]
    assert "plugin_two_path on digits (8, 8, 1) x 17 levels" in done.stdout and "new run" in done.stdout
    assert "training finished: 3 steps" in done.stdout and "test NLL on 359 digits test images" in done.stdout
    for written in ("run.json", "best.keras", "metrics.jsonl", "checkpoints/state-3.npz", "gallery/samples.png"):
        assert (run_dir / written).exists(), written
    recorded = json.loads((run_dir / "run.json").read_text())
    assert (recorded["arch"], recorded["head"], recorded["layers"]) == (REFERENCE, HEAD, 1)


@slow
def test_a_user_arch_run_resumes_with_the_same_reference(trained, tmp_path):
    source, done = trained
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    resumed = _train(run_dir, 6)  # a fresh process: the module is imported again from run.json's reference
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming at step 3" in resumed.stdout and "training finished: 6 steps" in resumed.stdout
    assert (run_dir / "checkpoints" / "state-6.npz").exists()
    assert json.loads((run_dir / "run.json").read_text())["arch"] == REFERENCE


def test_references_resolve_to_registered_names(tmp_path):
    """A reference's module is imported and the name looked up; the flag keeps the reference (what
    run.json records), the registered name builds the model and names the default run directory."""
    args = training_run.parse_args(["--arch", "pixel_keras.archs:row_lstm", "--head",
                                    "pixel_keras.head_registry:logistic_mixture", "--dataset", "digits"])
    assert (args.arch, args.arch_name) == ("pixel_keras.archs:row_lstm", "row_lstm")
    assert (args.head, args.head_name) == ("pixel_keras.head_registry:logistic_mixture", "logistic_mixture")
    assert (args.layers, args.hidden) == (3, 32) and args.run_dir == os.path.join("runs", "row_lstm_digits")
    plain = training_run.parse_args(["--arch", "pixelcnn", "--run-dir", str(tmp_path)])
    assert (plain.arch, plain.arch_name, plain.head, plain.head_name) == ("pixelcnn", "pixelcnn", "categorical",
                                                                          "categorical")


# (flags, the start of the one error line): a module that cannot be imported, a name its module does
# not register, and a plain name that is not registered (--head's now says it as --arch's does).
BAD_REFERENCES = [
    (["--arch", "tests.no_such_module:two_path"],
     "error: unknown --arch 'tests.no_such_module:two_path': cannot import 'tests.no_such_module'"),
    (["--arch", "json:nope"], "error: unknown --arch 'json:nope': 'json' registers no arch 'nope'"),
    (["--arch", "pixelcnn", "--head", "tests.no_such_module:tempered"],
     "error: unknown --head 'tests.no_such_module:tempered': cannot import 'tests.no_such_module'"),
    (["--arch", "pixelcnn", "--head", "json:nope"], "error: unknown --head 'json:nope': 'json' registers no head 'nope'"),
    (["--arch", "pixelcnn", "--head", "nope"], "error: unknown --head 'nope'; expected one of categorical, "),
]


def test_a_bad_reference_is_one_error_line_before_tensorflow_loads(tmp_path):
    """Every case in one Python (a second or so, no TensorFlow): each gives exit 2 and one line."""
    cases = [flags + ["--run-dir", str(tmp_path / "run")] for flags, _ in BAD_REFERENCES]
    script = (
        "import contextlib, io, json, sys\n"
        "from pixel_keras.cli import run_cli\n"
        "from training.run import main\n"
        "results = []\n"
        f"for flags in {cases!r}:\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        try:\n"
        "            run_cli(main, flags)\n"
        "        except SystemExit as stop:\n"
        "            results.append([stop.code, err.getvalue()])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'jax'})\n"
        "print(json.dumps([results, heavy]))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr[-3000:]
    results, heavy = json.loads(done.stdout.splitlines()[-1])
    assert heavy == [], "TensorFlow or Keras was imported"
    assert len(results) == len(BAD_REFERENCES), results
    for (code, err), (flags, expected) in zip(results, BAD_REFERENCES):
        assert code == 2 and err.count("\n") == 1 and err.startswith(expected), (flags, err)
