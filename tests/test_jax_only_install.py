"""pixel_keras installed with the `[jax]` extra alone, into a fresh virtual environment with no
TensorFlow in it (a GPU machine's situation: JAX and no TensorFlow wheel), trains a few steps with
the installed `pixel-keras-train` on an in-memory dataset, resumes, samples, scores a shipped model
and round-trips the codec. pip installs with constraints.txt (CI's tested set) from the package
index this machine is configured with; the downloads are cached after the first run."""

import os
import pathlib
import shutil
import subprocess
import sys

from tests.tiers import slow

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--arch", "pixelcnn", "--dataset", "digits", "--layers", "1", "--hidden", "8", "--batch-size", "16",
        "--steps-per-epoch", "3", "--gallery-every", "0", "--lr-schedule", "constant", "--run-dir", "run"]

SCORE_AND_CODE = """
import numpy as np
import pixel_keras as pk
from pixel_keras import codec
from pixel_keras.data import load_digits

shipped = pk.load_pretrained("fashion_mnist_pixelcnn_6x48")
nats = pk.log_prob(shipped, np.zeros((2, 28, 28, 1), np.int32))
assert nats.shape == (2,) and np.isfinite(nats).all() and (nats < 0).all(), nats
model = pk.load_model("run")
(_, test), _ = load_digits()
images = np.asarray(test[:2], np.int32)
blobs = codec.compress(model, images)
assert (codec.decompress(model, blobs) == images).all()
print("scored and coded", round(float(nats[0]), 1), [len(blob) for blob in blobs])
"""


def _refused(command, cwd, env):
    """The one `error:` line of a refused command (exit 2), before any traceback."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), \
        (command, done.returncode, done.stderr[-3000:])
    return done.stderr


def _run(command, cwd, env, timeout=900):
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (command, done.stdout[-3000:], done.stderr[-3000:])
    return done


@slow
def test_a_jax_only_install_trains_resumes_samples_scores_and_codes(tmp_path):
    source = tmp_path / "source"  # a copy: building writes nothing into the checkout
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, source / name)
    for package in ("pixel_keras", "training", "export"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "KERAS", "VIRTUAL_ENV"))}
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    python, bin_dir = str(venv / "bin" / "python"), venv / "bin"
    _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-c", str(source / "constraints.txt"),
          f"{source}[jax]"], tmp_path, env)
    env = dict(env, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
    work = tmp_path / "work"  # not the checkout: the installed package only
    work.mkdir()
    absent = _run([python, "-c", "import importlib.util as u; print([m for m in ('tensorflow', "
                   "'tensorflow_datasets', 'tensorboard', 'tensorflow_probability', 'tf_keras') if u.find_spec(m)])"],
                  work, env)
    assert absent.stdout.strip() == "[]", absent.stdout
    trained = _run([str(bin_dir / "pixel-keras-train"), *TINY, "--steps", "3"], work, env)
    assert (work / "run" / "best.keras").is_file(), trained.stdout[-2000:]
    resumed = _run([str(bin_dir / "pixel-keras-train"), *TINY, "--steps", "6"], work, env)
    assert "resuming at step 3" in resumed.stdout and '"step": 6' in (work / "run" / "metrics.jsonl").read_text(), \
        resumed.stdout
    _run([str(bin_dir / "pixel-keras-sample"), "--checkpoint", "run", "--num", "4", "--out", "s.png"], work, env)
    assert (work / "s.png").stat().st_size > 0
    done = _run([python, "-c", SCORE_AND_CODE], work, env)
    assert "scored and coded" in done.stdout
    # What needs TensorFlow says so in one line, naming the extra that installs it.
    extra = "pip install 'pixel_keras[tensorflow]'"
    assert extra in _refused([str(bin_dir / "pixel-keras-export"), "--run-dir", "run", "--out", "exported",
                              "--name", "digits"], work, env)
    assert extra in _refused([str(bin_dir / "pixel-keras-train"), *TINY[:2], "--dataset", "cifar10", "--steps", "1",
                              "--run-dir", "other"], work, env)
    no_backend = {key: value for key, value in env.items() if key != "KERAS_BACKEND"}  # Keras' default: TensorFlow
    line = _refused([str(bin_dir / "pixel-keras-evaluate"), "--run-dir", "run"], work, no_backend)
    assert extra in line and "KERAS_BACKEND=jax" in line, line
