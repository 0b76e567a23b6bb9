"""The applications under KERAS_BACKEND=jax (issue 17), each in a subprocess (the backend is fixed at
import): the GPU-section benchmarks with TensorFlow not installed (made unimportable), the training
app with TensorFlow installed (tf.data input, checkpoints, resume, evaluate, sample), and the
one-line refusals of the TensorFlow-only features (tf.distribute, the SavedModel export)."""

import gzip
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tests.processes import kill_once
from tests.tiers import slow

pytest.importorskip("jax")

REPO = pathlib.Path(__file__).resolve().parent.parent

# A sitecustomize that makes TensorFlow look not installed in a process and every process it starts
# (the benchmark workers). A meta-path finder, not `sys.modules["tensorflow"] = None`: Keras tests
# `"tensorflow" in sys.modules` to decide whether to ask TensorFlow about graph mode, which a None
# entry would answer wrongly, and no machine without TensorFlow has that entry.
NO_TENSORFLOW = '''
import sys

BLOCKED = ("tensorflow", "tensorflow_probability", "tf_keras", "tensorflow_datasets")


class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (made unimportable by the test)", name=name)
        return None


sys.meta_path.insert(0, NoTensorFlow())
'''


def jax_environment(tmp_path, without_tensorflow=False, extra_env=None):
    """The environment of a process under KERAS_BACKEND=jax (TensorFlow made unimportable if asked)."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu",
           **(extra_env or {})}
    env.pop("PIXEL_KERAS_TRACEBACK", None)
    if without_tensorflow:
        blocker = tmp_path / "no_tensorflow"
        blocker.mkdir(exist_ok=True)
        (blocker / "sitecustomize.py").write_text(NO_TENSORFLOW)
        env["PYTHONPATH"] = os.pathsep.join([str(blocker), str(REPO)])
    return env


def run_on_jax(args, tmp_path, without_tensorflow=False, extra_env=None):
    """(exit code, stdout, stderr) of `python args...` in the repository under KERAS_BACKEND=jax."""
    done = subprocess.run([sys.executable, *args], cwd=REPO, env=jax_environment(tmp_path, without_tensorflow,
                                                                                   extra_env),
                          capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout, done.stderr


def table_row(stdout, spec):
    """The numbers of the table row of contender `spec`."""
    rows = [line.split()[1:] for line in stdout.splitlines() if line.split()[:1] == [spec]]
    assert rows, stdout
    return rows


def check_ran(code, stdout, stderr):
    assert code == 0, stdout + stderr[-3000:]
    assert "on JAX" in stdout, stdout  # the header names the backend that ran


@slow
def test_throughput_and_sampling_benchmarks_run_on_jax_without_tensorflow(tmp_path):
    spec = "pixelcnn:layers=1,hidden=4"
    result = run_on_jax(["-m", "benchmarks.train_throughput", "--contenders", spec, "--size", "4", "--batch", "2",
                         "--steps", "1"], tmp_path, without_tensorflow=True)
    check_ran(*result)
    params, rate = table_row(result[1], spec)[0][:2]
    assert int(params.replace(",", "")) > 0 and float(rate) > 0

    result = run_on_jax(["-m", "benchmarks.sampling", "--contenders", spec, "--size", "2", "--num", "2",
                         "--levels", "4"], tmp_path, without_tensorflow=True)
    check_ran(*result)
    rows = table_row(result[1], spec)
    assert [row[0] for row in rows] == ["plain", "fast"] and all(float(row[3]) > 0 for row in rows), result[1]


def write_idx(directory, prefix, images, labels):
    """Fashion-MNIST's IDX files (gzipped) of uint8 `images` (N, H, W) and `labels` (N,)."""
    count, height, width = images.shape
    with gzip.open(directory / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"".join(n.to_bytes(4, "big") for n in (0x803, count, height, width)) + images.tobytes())
    with gzip.open(directory / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write((0x801).to_bytes(4, "big") + count.to_bytes(4, "big") + labels.tobytes())


@slow
def test_budget_benchmark_trains_and_scores_fashion_mnist_idx_on_jax_without_tensorflow(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 40), ("t10k", 10)):
        write_idx(tmp_path, prefix, rng.integers(0, 256, (count, 4, 4), dtype=np.uint8),
                  rng.integers(0, 10, count, dtype=np.uint8))
    spec = "pixelcnn:layers=1,hidden=4"
    code, stdout, stderr = run_on_jax(
        ["-m", "benchmarks.nll_budget", "--dataset", "fashion_mnist", "--minutes", "0.01", "--batch", "4",
         "--steps-per-epoch", "2", "--contenders", spec], tmp_path, without_tensorflow=True,
        extra_env={"PIXEL_KERAS_FASHION_MNIST_DIR": str(tmp_path)})
    check_ran(code, stdout, stderr)
    assert "36 training, 4 validation and 10 test images" in stdout, stdout  # the numpy IDX loader's splits
    params, steps, _, bits = table_row(stdout, spec)[0][:4]
    assert int(steps) >= 1
    # Random 8-bit data: a barely trained model is near uniform (8 bits/dim), and a likelihood is finite.
    assert math.isfinite(float(bits)) and 6.0 < float(bits) < 10.0, stdout


def cli(*calls):
    """A `python -c` program running each (module, argv) through `run_cli`, as the console scripts
    do, printing `exit <code>` after each (a refusal exits; the next call still runs)."""
    lines = ["import importlib", "from pixel_keras.cli import run_cli"]
    for module, argv in calls:
        lines += ["try:", f"    run_cli(importlib.import_module({module!r}).main, {list(argv)!r})",
                  "    print('exit 0', flush=True)",
                  "except SystemExit as stop:", "    print(f'exit {stop.code}', flush=True)"]
    return ["-c", "\n".join(lines)]


@slow
def test_training_app_on_jax_refuses_tensorflow_features_trains_resumes_evaluates_and_samples(tmp_path):
    # Two processes in all (each imports TensorFlow, Keras and JAX): the one-line refusals, then a
    # run of 2 steps; a resume to step 4, `training.evaluate` and `training.sample`.
    run_dir = tmp_path / "run"
    with zipfile.ZipFile(tmp_path / "model.keras", "w"):  # a readable file: the export's refusal is the backend's
        pass
    flags = ["--arch", "pixelcnn", "--dataset", "digits", "--layers", "1", "--hidden", "4", "--steps-per-epoch", "2",
             "--validation-images", "16", "--gallery-size", "1", "--run-dir", str(run_dir),
             "--lr-schedule", "constant"]  # trains on when resumed with more --steps (a cosine run ended at 2)
    code, stdout, stderr = run_on_jax(cli(
        ("training.run", flags + ["--devices", "2"]),
        ("export.saved_model", ["--run-dir", str(tmp_path / "model.keras"), "--out", str(tmp_path / "models"),
                                "--name", "m"]),
        ("training.run", flags + ["--steps", "2"]),
    ), tmp_path)
    exits = re.findall(r"^exit (\d+)$", stdout, re.MULTILINE)
    assert code == 0 and exits == ["2", "2", "0"], stdout + stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2 and "Traceback" not in stderr, stderr[-3000:]
    assert "--devices 2" in errors[0] and "tf.distribute, a TensorFlow feature" in errors[0]
    assert "SavedModel export is a TensorFlow feature" in errors[1] and "backend now is jax" in errors[1]
    assert not (tmp_path / "models").exists()
    assert "1 replica(s) on jax, new run" in stdout and "training finished: 2 steps" in stdout, stdout
    assert (run_dir / "best.keras").exists() and (run_dir / "gallery" / "samples.png").exists()

    out = tmp_path / "samples.png"
    code, stdout, stderr = run_on_jax(cli(
        ("training.run", flags + ["--steps", "4"]),
        ("training.evaluate", ["--run-dir", str(run_dir)]),
        ("training.sample", ["--checkpoint", str(run_dir), "--num", "2", "--out", str(out)]),
    ), tmp_path)
    assert code == 0 and re.findall(r"^exit (\d+)$", stdout, re.MULTILINE) == ["0"] * 3, stdout + stderr[-3000:]
    # The checkpoint of step 2 restored the optimizer's step count (and the weights with it).
    assert "resuming at step 2" in stdout and "training finished: 4 steps" in stdout, stdout
    test_lines = re.findall(r"test NLL on 359 digits test images: .*", stdout)
    assert len(test_lines) == 2 and test_lines[0] == test_lines[1], stdout  # evaluate's best.keras scores alike
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_numpy_splits_are_the_tf_data_splits_and_other_sources_are_refused():
    from pixel_keras.data import DataError, load_arrays, load_dataset

    arrays, image_shape, num_levels = load_arrays("digits", seed=3)
    splits = load_dataset("digits", seed=3)
    assert (image_shape, num_levels) == (splits.image_shape, splits.num_levels) == ((8, 8, 1), 17)
    for name in ("train", "validation", "test"):
        np.testing.assert_array_equal(arrays[name], np.stack(list(getattr(splits, name).as_numpy_iterator())))
    with pytest.raises(DataError, match="Received name='cifar10'"):
        load_arrays("cifar10")


@slow
def test_training_app_without_tensorflow_resumes_a_killed_run_to_the_weights_of_an_uninterrupted_one(tmp_path):
    # TensorFlow unimportable: numpy input (training/feed.py) and numpy checkpoints. The same run
    # twice, once left alone and once killed after a checkpoint and resumed: the same final state.
    # A run directory of TensorFlow checkpoints (older versions) is refused in one line.
    def command(run_dir):
        return ["--arch", "pixelcnn", "--dataset", "digits", "--layers", "1", "--hidden", "4", "--batch-size", "8",
                "--steps", "600", "--steps-per-epoch", "200", "--checkpoint-every", "10", "--validation-images", "16",
                "--gallery-size", "1", "--gallery-every", "0", "--lr-schedule", "constant", "--run-dir", str(run_dir)]

    alone, killed = tmp_path / "alone", tmp_path / "killed"
    env = jax_environment(tmp_path, without_tensorflow=True)
    process = subprocess.Popen([sys.executable, "-m", "training.run", *command(killed)], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_once(process, (killed / "checkpoints" / "latest.json").exists)
    saved = json.loads((killed / "checkpoints" / "latest.json").read_text())["step"]
    assert 0 < saved < 600

    legacy = tmp_path / "legacy"
    shutil.copytree(REPO / "tests" / "data" / "legacy_tf_run_7a3e52f", legacy)
    legacy_flags = ["--arch", "pixelcnn", "--dataset", "digits", "--layers", "1", "--hidden", "4", "--batch-size", "8",
                    "--steps", "8", "--steps-per-epoch", "4", "--validation-images", "16", "--gallery-size", "0",
                    "--lr-schedule", "constant", "--run-dir", str(legacy)]
    code, stdout, stderr = run_on_jax(cli(("training.run", legacy_flags), ("training.run", command(killed)),
                                          ("training.run", command(alone))), tmp_path, without_tensorflow=True)
    assert code == 0 and re.findall(r"^exit (\d+)$", stdout, re.MULTILINE) == ["2", "0", "0"], stdout + stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "holds TensorFlow checkpoints" in errors[0] and "Traceback" not in stderr, stderr
    assert f"resuming at step {saved}" in stdout and stdout.count("training finished: 600 steps") == 2, stdout
    assert "TensorBoard logs skipped: TensorFlow is not installed" in stdout
    for run_dir in (alone, killed):
        assert (run_dir / "best.keras").exists() and (run_dir / "gallery" / "samples.png").exists()
        assert not (run_dir / "logs").exists()
        steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert steps == [200, 400, 600], steps
    with np.load(alone / "checkpoints" / "state-600.npz") as expected, \
            np.load(killed / "checkpoints" / "state-600.npz") as resumed:
        assert len(expected.files) > 3
        for name in set(expected.files) - {"paths"}:  # variable names, numbered per process
            np.testing.assert_array_equal(resumed[name], expected[name], err_msg=name)
