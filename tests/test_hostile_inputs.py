"""Issue 25 (a hostile user): every numeric flag of every app and every `batch_size` / `seed` of the
library is checked before any work, with one line naming it; run.json is strict JSON; output
paths fail in one line (or get their folders made); `--help` imports no TensorFlow."""

import json
import os
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

import pixel_keras as pk
from pixel_keras.cli import RunError
from tests.tiers import slow
from training import run as training_run

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--dataset", "digits", "--layers", "1", "--hidden", "4"]


def _refusal(capsys, main, argv):
    """The last stderr line of `main(argv)`, which must stop with argparse's exit status 2."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.fixture
def tiny_model_file(tmp_path):
    path = tmp_path / "digits.keras"
    pk.build_model("pixelcnn", (8, 8, 1), 17, num_layers=1, hidden=4).save(path)
    return path


# Item 4: batch_size of every public function that takes one.
def test_batch_size_is_checked_by_every_public_function():
    model = pk.build_model("pixelcnn", (4, 4, 1), 4, num_layers=1, hidden=4)
    images = np.random.default_rng(0).integers(0, 4, (4, 4, 4, 1)).astype(np.int32)
    calls = {"log_prob": lambda b: pk.log_prob(model, images, batch_size=b),
             "bits_per_dim": lambda b: pk.bits_per_dim(model, images, batch_size=b),
             "sample": lambda b: pk.sample(model, 2, batch_size=b),
             "complete": lambda b: pk.complete(model, images, np.ones((4, 4), bool), batch_size=b)}
    for name, call in calls.items():
        for bad in (-1, 0, 1.5, True, "2"):
            with pytest.raises(ValueError, match=rf"batch_size to be a positive integer. Received batch_size={bad!r}"):
                call(bad)
    np.testing.assert_allclose(pk.log_prob(model, images, batch_size=np.int64(3)), pk.log_prob(model, images),
                               rtol=1e-6)


# Item 5: every numeric flag of every command, refused by argparse before any work.
def _no_work(monkeypatch):
    """Make every benchmark fail loudly if it starts working (its header is its first output)."""
    import importlib

    def started(*args, **kwargs):
        raise AssertionError("the benchmark started with a bad flag")

    for name in ("compression", "gpu_report", "head_step_time", "nll_budget", "profile_step", "sampling", "serving",
                 "train_throughput"):
        monkeypatch.setattr(importlib.import_module(f"benchmarks.{name}"), "print_header", started)


def test_every_numeric_flag_is_checked_before_any_work(tmp_path, capsys, monkeypatch):
    from export import client, saved_model
    from training import evaluate, sample

    _no_work(monkeypatch)
    missing = str(tmp_path / "missing")
    cases = [
        (training_run.parse_args, ["--arch", "pixelcnn", "--learning-rate", "-1"], "--learning-rate", "> 0"),
        (training_run.parse_args, ["--arch", "pixelcnn", "--learning-rate", "nan"], "--learning-rate", "received nan"),
        (training_run.parse_args, ["--arch", "pixelcnn", "--dropout", "inf"], "--dropout", "in [0, 1)"),
        (training_run.parse_args, ["--arch", "pixelcnn", "--seed", "-1"], "--seed", "in [0, 4294967295]"),
        (training_run.parse_args, ["--arch", "pixelcnn", "--levels", "257"], "--levels", "in [2, 256]"),
        (training_run.parse_args, ["--arch", "pixelcnn", "--steps", "0"], "--steps", ">= 1"),
        (training_run.parse_args, ["--arch", "pixelcnn", "--gallery-size", "-1"], "--gallery-size", ">= 0"),
        (training_run.parse_args, ["--arch", "pixelcnn", "--multiscale", "1"], "--multiscale", ">= 2"),
        (evaluate.main, ["--run-dir", missing, "--batch-size", "0"], "--batch-size", ">= 1"),
        (sample.main, ["--checkpoint", missing, "--temperature", "inf"], "--temperature", "received inf"),
        (sample.main, ["--checkpoint", missing, "--num", "0"], "--num", ">= 1"),
        (saved_model.main, ["--run-dir", missing, "--out", missing, "--name", "m", "--version", "0"], "--version", ""),
        (saved_model.main, ["--run-dir", missing, "--out", missing, "--name", "m", "--max-score-images", "2147483648"],
         "--max-score-images", "in [1, 2147483647]"),
        (client.main, ["--name", "m", "--timeout", "nan", "sample"], "--timeout", "received nan"),
        (client.main, ["--name", "m", "sample", "--num-images", "-1"], "--num-images", "in [0, 2147483647]"),
        (client.main, ["--name", "m", "sample", "--temperature", "-0.5"], "--temperature", "> 0"),
    ]
    benchmarks = [("compression", ["--model", missing, "--num", "0"], "--num"),
                  ("gpu_report", ["--seconds", "-1"], "--seconds"),
                  ("head_step_time", ["--steps", "0"], "--steps"),
                  ("nll_budget", ["--minutes", "nan"], "--minutes"),
                  ("profile_step", ["--top", "0"], "--top"),
                  ("sampling", ["--levels", "1"], "--levels"),
                  ("serving", ["--repeats", "0"], "--repeats"),
                  ("train_throughput", ["--batch", "-16"], "--batch")]
    for name, argv, flag in benchmarks:
        module = __import__(f"benchmarks.{name}", fromlist=["main"])
        cases.append((module.main, argv, flag, ""))
    for main, argv, flag, bound in cases:
        line = _refusal(capsys, main, argv)
        assert f"error: argument {flag}: must be " in line and bound in line, (argv, line)


def test_run_json_is_strict_json(tmp_path):
    args = training_run.parse_args(["--arch", "pixelcnn", *TINY, "--run-dir", str(tmp_path)])
    config, _ = training_run.check_run_config(tmp_path, args)
    with pytest.raises(ValueError):
        training_run.write_run_config(tmp_path, {**config, "learning_rate": float("nan")})
    assert not (tmp_path / "run.json").exists()
    # A run.json of an older version may hold NaN (Python's json reads it): refused, naming the file.
    (tmp_path / "run.json").write_text(json.dumps({**config, "learning_rate": float("nan")}))
    with pytest.raises(RunError, match=r"run.json is not valid JSON \(NaN is not a JSON number"):
        training_run.check_run_config(tmp_path, args)


# Item 6: --max-minutes: 0 means no limit; negative, NaN or infinite is refused.
def test_max_minutes_must_be_finite_and_not_negative(capsys):
    for bad in ("-1", "nan", "inf"):
        line = _refusal(capsys, training_run.parse_args, ["--arch", "pixelcnn", "--max-minutes", bad])
        assert line.endswith(f"error: argument --max-minutes: must be a finite number >= 0; received {bad}")
    assert training_run.parse_args(["--arch", "pixelcnn", "--max-minutes", "0"]).max_minutes == 0


# Item 7: output paths and hosts fail in one line, before anything is loaded.
def test_output_paths_and_hosts_fail_in_one_line(tmp_path, capsys, tiny_model_file):
    from export import client, saved_model
    from training import sample

    a_file = tmp_path / "a_file"
    a_file.write_text("")
    with pytest.raises(RunError, match=r"--run-dir .*a_file is a file, not a directory"):
        training_run.parse_args(["--arch", "pixelcnn", "--run-dir", str(a_file)])
    with pytest.raises(RunError, match=r"--run-dir .*a_file/run is inside .*a_file, which is a file"):
        training_run.parse_args(["--arch", "pixelcnn", "--run-dir", str(a_file / "run")])
    with pytest.raises(RunError, match=r"--out .*a_file is a file, not a directory"):
        saved_model.main(["--run-dir", str(tiny_model_file), "--out", str(a_file), "--name", "m"])
    with pytest.raises(RunError, match=r"--out .*a_file/s.png: cannot create its folder, .*a_file is a file"):
        sample.main(["--checkpoint", str(tiny_model_file), "--out", str(a_file / "s.png")])
    line = _refusal(capsys, client.main, ["--name", "m", "--rest", "not a host:99999", "sample"])
    assert line.endswith("error: argument --rest: must be HOST:PORT (e.g. localhost:8501, a port in 1 .. 65535); "
                         "received 'not a host:99999'")
    with pytest.raises(RunError, match="cannot send a request to 'a host:x': nonnumeric port"):
        client.rest_predict("a host:x", "m", "sample", {"num_images": 1, "seed": 0})  # the library call too
    # Missing output folders are made.
    out = tmp_path / "new" / "folder" / "s.png"
    sample.main(["--checkpoint", str(tiny_model_file), "--num", "1", "--out", str(out)])
    assert out.exists()


# Item 8: seeds, the image format and scale of training.sample, --help, tiny splits, resumes.
@slow
def test_seed_is_checked_in_one_place():
    model = pk.build_model("pixelcnn", (2, 2, 1), 2, num_layers=1, hidden=2)
    for bad in (2**70, 2**63, -2**63 - 1, True, 1.0):
        with pytest.raises(ValueError, match=rf"Expected seed to be an integer in \[-2\*\*63, 2\*\*63 - 1\] "
                                             rf"\(int64\). Received seed={bad!r}\."):
            pk.sample(model, 1, seed=bad)
    np.testing.assert_array_equal(pk.sample(model, 2, seed=np.int64(2**63 - 1)), pk.sample(model, 2, seed=2**63 - 1))


def test_sample_writes_the_format_its_suffix_names_scaled_as_galleries(tmp_path, tiny_model_file):
    from training import sample

    sample.main(["--checkpoint", str(tiny_model_file), "--num", "4", "--out", str(tmp_path / "s.jpg")])
    with Image.open(tmp_path / "s.jpg") as image:
        # a 2 x 2 grid of 8 x 8 images with 1-pixel borders (19 x 19) scaled up 14 times, as a gallery's
        # (pixel_keras.gallery.scale_up: each image >= 112 pixels wide)
        assert image.format == "JPEG" and image.size == (19 * 14, 19 * 14)
    with pytest.raises(RunError, match=r"--out .*s.xyz: cannot write a .xyz image; name the format by the suffix"):
        sample.main(["--checkpoint", str(tmp_path / "missing.keras"), "--out", str(tmp_path / "s.xyz")])


APPS = ["training.run", "training.evaluate", "training.sample", "export.saved_model", "export.client",
        "benchmarks.compression", "benchmarks.gpu_report", "benchmarks.head_step_time", "benchmarks.nll_budget",
        "benchmarks.profile_step", "benchmarks.sampling", "benchmarks.serving", "benchmarks.train_throughput",
        "benchmarks.app_step", "pixel_keras.codec", "pixel_keras.fetch_mnist"]

_HELP_OF_EVERY_APP = """
import contextlib, io, runpy, sys
for app in sys.argv[1:]:
    sys.argv = [app, "--help"]
    with contextlib.redirect_stdout(io.StringIO()) as shown:
        try:
            runpy.run_module(app, run_name="__main__")
        except SystemExit:
            pass
    print(app, "tensorflow" in sys.modules, "keras" in sys.modules, "(default: True)" in shown.getvalue())
"""


@slow
def test_help_of_every_app_imports_no_tensorflow():
    environment = dict(os.environ, PYTHONPATH=str(ROOT), KERAS_BACKEND="tensorflow")
    done = subprocess.run([sys.executable, "-c", _HELP_OF_EVERY_APP, *APPS], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    # app, TensorFlow imported, Keras imported, a flag shown as "(default: True)" (--no-residual was)
    assert done.stdout.split("\n")[:-1] == [f"{app} False False False" for app in APPS], done.stdout


def test_a_tiny_folder_split_gets_a_one_line_warning(tmp_path):
    from pixel_keras.data import load_dataset

    for index in range(6):
        Image.fromarray(np.full((4, 4), index * 40, np.uint8)).save(tmp_path / f"{index}.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = load_dataset(f"folder:{tmp_path}", image_size=4, channels=1)
    assert splits.sizes == {"train": 4, "validation": 1, "test": 1}
    tiny = [w for w in caught if "readable images" in str(w.message)]
    assert len(tiny) == 1
    assert "has 6 readable images: 4 train, 1 validation and 1 test image(s)" in str(tiny[0].message)
    assert "fewer than 10 images" in str(tiny[0].message)
    import io

    from pixel_keras.cli import _show_warning
    from pixel_keras.data import DataWarning

    assert tiny[0].category is DataWarning
    shown = io.StringIO()
    _show_warning(tiny[0].message, DataWarning, "data.py", 1, file=shown)  # as the apps print it (run_cli)
    line = shown.getvalue()
    assert line.startswith("warning: Image folder") and line.count("\n") == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for index in range(6, 100):
            Image.fromarray(np.full((4, 4), index, np.uint8)).save(tmp_path / f"{index}.png")
        load_dataset(f"folder:{tmp_path}", image_size=4, channels=1)  # 10 test images: no warning
    assert not [w for w in caught if issubclass(w.category, DataWarning)]


def test_validation_images_may_change_on_resume(tmp_path):
    args = training_run.parse_args(["--arch", "pixelcnn", *TINY, "--run-dir", str(tmp_path)])
    config, _ = training_run.check_run_config(tmp_path, args)
    training_run.write_run_config(tmp_path, config)
    args.validation_images = 100
    config, saved = training_run.check_run_config(tmp_path, args)
    assert saved["validation_images"] == 1000 and config["validation_images"] == 100  # recorded when it trains


_KERAS_AFTER_US = """
import sys
import pixel_keras
assert "keras" not in sys.modules  # the package itself loads nothing heavy
import keras
import pixel_keras.saving  # the documented import: registers our layers and losses
model = keras.models.load_model(sys.argv[1])
print(sorted({type(layer).__name__ for layer in model.layers}))
"""


@slow
def test_a_keras_file_loads_with_keras_alone_after_import_pixel_keras_saving(tiny_model_file):
    done = subprocess.run([sys.executable, "-c", _KERAS_AFTER_US, str(tiny_model_file)], capture_output=True, text=True,
                          cwd=pathlib.Path(__file__).resolve().parents[1],
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "'MaskedConv2D'" in done.stdout.splitlines()[-1]
