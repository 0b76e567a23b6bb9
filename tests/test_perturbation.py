"""The background model's input perturbation (training.run --perturb-rate) and --weight-decay."""

import json

import numpy as np
import pytest

from pixel_keras.fitting import make_optimizer
from pixel_keras.perturbation import perturb
from training import feed
from training import run as training_run

TINY = ["--dataset", "digits", "--layers", "1", "--hidden", "8", "--batch-size", "16"]


def test_perturbation_replaces_values_at_the_stated_rate():
    images = np.zeros((64, 28, 28, 1), np.int32)
    for rate in (0.1, 0.3):
        changed = np.mean(perturb(images, rate, 256, seed=0, step=5) != images)
        assert changed == pytest.approx(rate * 255 / 256, abs=0.005)  # a replacement may draw the old level
    drawn = perturb(images, 0.5, 7, seed=0, step=5)
    assert drawn.dtype == images.dtype and drawn.min() == 0 and drawn.max() == 6  # uniform over all 7 levels
    np.testing.assert_array_equal(drawn, perturb(images, 0.5, 7, seed=0, step=5))  # a function of (seed, step)
    assert not np.array_equal(drawn, perturb(images, 0.5, 7, seed=0, step=6))
    assert perturb(images, 0.0, 7, seed=0, step=5) is not None and np.array_equal(perturb(images, 0.0, 7, 0, 5), images)
    with pytest.raises(ValueError, match="rate"):
        perturb(images, 1.0, 7, 0, 0)


def test_numpy_feed_perturbs_each_step_as_a_resumed_run_would():
    images = np.random.default_rng(0).integers(0, 4, (40, 3, 3, 1)).astype(np.uint8)
    start = feed.train_batches(images, None, 8, seed=1, step=0, perturb_rate=0.3, num_levels=4)
    batches = [next(start)[0] for _ in range(4)]
    resumed = feed.train_batches(images, None, 8, seed=1, step=2, perturb_rate=0.3, num_levels=4)
    np.testing.assert_array_equal(next(resumed)[0], batches[2])
    clean = feed.train_batches(images, None, 8, seed=1, step=0)
    assert not np.array_equal(next(clean)[0], batches[0])


@pytest.mark.slow
def test_tf_data_pipeline_perturbs_at_the_stated_rate():
    """The tf.data path runs the same `perturb` (by seed and step) on its batches."""
    args = training_run.parse_args(["--arch", "pixelcnn", *TINY, "--perturb-rate", "0.2", "--seed", "3"])
    from pixel_keras.data import load_dataset

    import tensorflow as tf

    splits = load_dataset("digits", None, 32, 3, 3, None)
    train, _ = training_run.make_pipelines(splits, args, 2, tf.data.Options())
    tf_batch = next(iter(train))[0].numpy()
    clean = next(iter(training_run.make_pipelines(splits, training_run.parse_args(["--arch", "pixelcnn", *TINY, "--seed", "3"]),
                                                  2, tf.data.Options())[0]))[0].numpy()
    changed = np.mean(tf_batch != clean)
    assert 0.1 < changed < 0.3  # 0.2 x (L - 1) / L of the values


def test_weight_decay_reaches_the_optimizer():
    assert make_optimizer("adam", 1e-3, 1e-4).weight_decay == pytest.approx(1e-4)
    assert make_optimizer("rmsprop", 1e-3).weight_decay is None
    with pytest.raises(ValueError, match="weight_decay"):
        make_optimizer("adam", 1e-3, -1.0)


@pytest.mark.slow
def test_run_records_perturbation_and_decay_and_refuses_another_on_resume(tmp_path, capsys):
    run_dir = tmp_path / "run"
    flags = ["--arch", "pixelcnn", *TINY, "--steps", "2", "--steps-per-epoch", "2", "--gallery-size", "0",
             "--validation-images", "16", "--run-dir", str(run_dir)]
    training_run.main(flags + ["--perturb-rate", "0.2", "--weight-decay", "0.0001"])
    saved = json.loads((run_dir / "run.json").read_text())
    assert saved["perturb_rate"] == 0.2 and saved["weight_decay"] == 0.0001
    from pixel_keras.cli import RunError

    with pytest.raises(RunError, match="perturb_rate: 0.2 -> 0.1"):
        training_run.main(flags + ["--perturb-rate", "0.1", "--weight-decay", "0.0001", "--steps", "4"])
    for bad, message in ((["--perturb-rate", "1"], "--perturb-rate"), (["--weight-decay", "-1"], "--weight-decay")):
        with pytest.raises(SystemExit):
            training_run.parse_args(["--arch", "pixelcnn", *bad])
        assert message in capsys.readouterr().err
