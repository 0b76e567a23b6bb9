"""`python -m training.sample`: PNG grids of samples and completions from a saved model."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
from PIL import Image

import pixel_keras as pk
from pixel_keras.gallery import GALLERY_MIN_IMAGE_WIDTH
from tests.tiers import slow

pytestmark = slow

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
    assert _grid(tmp_path / "s.png").shape == (19, 19)  # 2 x 2 grid of 8 x 8, 1-pixel borders

    result = _sample_cli("--checkpoint", model_path, "--num", 4, "--complete", "digits:test", "--out",
                         tmp_path / "c.png")
    assert result.returncode == 0, result.stderr[-2000:]
    grid = _grid(tmp_path / "c.png")
    assert grid.shape == (19, 37)  # completions above originals
    np.testing.assert_array_equal(grid[1:5], grid[10:14])  # the known top half is kept

    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(tmp_path / "white.png")
    result = _sample_cli("--checkpoint", model_path, "--complete", tmp_path / "white.png", "--out",
                         tmp_path / "one.png")
    assert result.returncode == 0 and _grid(tmp_path / "one.png").shape == (19, 10)


def test_sample_cli_errors_are_one_line(tmp_path):
    result = _sample_cli("--checkpoint", tmp_path / "missing.keras", "--out", tmp_path / "x.png")
    assert result.returncode != 0 and "error: no model at" in result.stderr and "Traceback" not in result.stderr
    result = _sample_cli("--checkpoint", tmp_path, "--temperature", 0)
    assert result.returncode != 0 and "argument --temperature: must be a finite number > 0" in result.stderr


def _grid(path, size=8):
    """A PNG grid of size x size images at its own scale (written scaled up as galleries are)."""
    grid = np.asarray(Image.open(path))
    factor = -(-GALLERY_MIN_IMAGE_WIDTH // size)
    assert grid.shape[0] % factor == 0 and grid.shape[1] % factor == 0
    return grid[::factor, ::factor]


def _tiles(path, size=8):
    """The images of a PNG grid of size x size images with 1-pixel borders."""
    grid = _grid(path, size)
    return [grid[top:top + size, left:left + size] for top in range(1, grid.shape[0], size + 1)
            for left in range(1, grid.shape[1], size + 1)]


def test_different_seeds_share_no_images(tmp_path):
    from training import sample

    model_path = tmp_path / "digits.keras"
    pk.build_model("pixelcnn", (8, 8, 1), 17, num_layers=1, hidden=4).save(model_path)
    tiles = {}
    for seed in (0, 2):  # with per-batch seeds seed + start, seed 2's first batch was seed 0's second
        sample.main(["--checkpoint", str(model_path), "--num", "4", "--batch-size", "2", "--seed", str(seed),
                     "--out", str(tmp_path / f"{seed}.png")])
        tiles[seed] = _tiles(tmp_path / f"{seed}.png")
    assert len(tiles[0]) == len(tiles[2]) == 4
    assert not any(np.array_equal(a, b) for a in tiles[0] for b in tiles[2])
    from pixel_keras.sampling import batch_seed

    assert batch_seed(0, 1) == batch_seed(0, 1) != batch_seed(1, 0) == 1  # batch 0 keeps the seed


def test_docstring_examples_run(tmp_path):
    """The module docstring's commands for unconditional models, in a run directory made here (of
    digits, not Fashion-MNIST)."""
    from training import sample

    run_dir = tmp_path / "runs" / "pixelcnn_fashion_mnist"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"dataset": "digits", "data_dir": None, "image_size": 32,
                                                  "channels": 3, "seed": 0}))
    pk.build_model("pixelcnn", (8, 8, 1), 17, num_layers=1, hidden=4).save(run_dir / "best.keras")
    (tmp_path / "model.keras").write_bytes((run_dir / "best.keras").read_bytes())
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(tmp_path / "photo.png")
    commands = [line.split("python -m training.sample", 1)[1].split() for line in sample.__doc__.splitlines()
                if "training.sample --checkpoint runs/pixelcnn_fashion_mnist" in line
                or "training.sample --checkpoint model.keras" in line]
    assert len(commands) == 3  # samples of a run; completions of a split with its best.keras; of a file
    for command in commands:
        command = [str(tmp_path / word) if word.startswith("runs/") or word.endswith((".png", ".keras")) else word
                   for word in command]
        sample.main(command + ["--num", "2"])  # the last --num counts
        assert pathlib.Path(command[command.index("--out") + 1]).exists(), command
