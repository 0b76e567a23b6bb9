"""`python -m training.sample`: PNG grids of samples and completions from a saved model."""

import os
import pathlib
import subprocess
import sys

import numpy as np
from PIL import Image

import pixel_keras as pk

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _sample_cli(*args):
    environment = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "training.sample", *map(str, args)], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=300)


def test_samples_and_completions_are_written_as_png_grids(tmp_path):
    model_path = tmp_path / "digits.keras"
    pk.build_model("pixelcnn", (8, 8, 1), 17, num_layers=1, hidden=4).save(model_path)

    result = _sample_cli("--checkpoint", model_path, "--num", 3, "--batch-size", 2, "--out", tmp_path / "s.png")
    assert result.returncode == 0, result.stderr[-2000:]
    assert np.asarray(Image.open(tmp_path / "s.png")).shape == (19, 19)  # 2 x 2 grid of 8 x 8, 1-pixel borders

    result = _sample_cli("--checkpoint", model_path, "--num", 4, "--complete", "digits:test", "--out",
                         tmp_path / "c.png")
    assert result.returncode == 0, result.stderr[-2000:]
    grid = np.asarray(Image.open(tmp_path / "c.png"))
    assert grid.shape == (19, 37)  # completions above originals
    np.testing.assert_array_equal(grid[1:5], grid[10:14])  # the known top half is kept

    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(tmp_path / "white.png")
    result = _sample_cli("--checkpoint", model_path, "--complete", tmp_path / "white.png", "--out",
                         tmp_path / "one.png")
    assert result.returncode == 0 and np.asarray(Image.open(tmp_path / "one.png")).shape == (19, 10)


def test_sample_cli_errors_are_one_line(tmp_path):
    result = _sample_cli("--checkpoint", tmp_path / "missing.keras", "--out", tmp_path / "x.png")
    assert result.returncode != 0 and "error: no model at" in result.stderr and "Traceback" not in result.stderr
    result = _sample_cli("--checkpoint", tmp_path, "--temperature", 0)
    assert result.returncode != 0 and "--temperature must be positive" in result.stderr
