"""The training app's pieces that need no TensorFlow: the numpy feed, the numpy checkpoints (with
the TensorFlow checkpoints of older run directories still read), and metrics.jsonl."""

import itertools
import json
import pathlib
import re
import shutil

import keras
import numpy as np
import pytest

import pixel_keras as pk
from pixel_keras.cli import RunError
from pixel_keras.fitting import make_optimizer
from tests.tiers import slow
from training import run as training_run
from training.callbacks import MetricsLog
from training.checkpoints import RunCheckpoints
from training.feed import train_batches

# A run directory written by the TensorFlow app of commit 7a3e52f (tf.train.Checkpoint files):
# pixelcnn, digits, --layers 1 --hidden 4 --batch-size 8 --steps 4 --steps-per-epoch 4
# --validation-images 16 --gallery-size 0 --lr-schedule constant (Adam 2e-3); logs left out.
LEGACY_RUN = pathlib.Path(__file__).resolve().parent / "data" / "legacy_tf_run_7a3e52f"


def test_the_batch_of_a_step_depends_on_the_seed_and_the_step_only():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    labels = np.arange(10, dtype=np.int32) + 100
    from_start = list(itertools.islice(train_batches(images, labels, 4, seed=3, step=0), 7))
    resumed = list(itertools.islice(train_batches(images, labels, 4, seed=3, step=5), 2))
    for (inputs, targets), (expected_inputs, expected_targets) in zip(resumed, from_start[5:]):
        np.testing.assert_array_equal(inputs[0], expected_inputs[0])
        np.testing.assert_array_equal(inputs[1], expected_inputs[1])
        np.testing.assert_array_equal(targets, expected_targets)
    first_epoch = np.concatenate([inputs[0] for inputs, _ in from_start[:2]]).ravel()
    assert len(set(first_epoch)) == 8 and from_start[0][0][0].dtype == np.int32  # 2 whole batches, no repeats
    np.testing.assert_array_equal(from_start[0][0][1], from_start[0][0][0].ravel() + 100)  # labels follow
    other_seed = next(train_batches(images, None, 4, seed=4, step=0))[0]
    assert not np.array_equal(other_seed, from_start[0][0][0])


def _tiny_model(hidden=4):
    model = pk.build_model("pixelcnn", (2, 2, 1), 4, num_layers=1, hidden=hidden)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss=pk.NegativeLogLikelihood())
    return model


def test_a_checkpoint_restores_by_variable_path_when_the_graph_order_changed(tmp_path):
    """A model whose variables come in another order than when its run was saved (a conditional
    PixelCNN's conditioning moved from an `Add` into its convolution) resumes each from its path."""
    model = pk.build_model("pixelcnn", (2, 2, 1), 4, num_layers=1, hidden=4, num_classes=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=pk.NegativeLogLikelihood())
    images, labels = np.ones((2, 2, 2, 1), np.int32), np.array([0, 2], np.int32)
    model.train_on_batch([images, labels], images)
    RunCheckpoints(model, tmp_path).save()
    restored = pk.build_model("pixelcnn", (2, 2, 1), 4, num_layers=1, hidden=4, num_classes=3)
    restored.compile(optimizer=keras.optimizers.Adam(1e-3), loss=pk.NegativeLogLikelihood())
    checkpoints = RunCheckpoints(restored, tmp_path)
    count = len(restored.variables)  # the model's variables, then the optimizer's, each in another order
    checkpoints._variables = checkpoints._variables[:count][::-1] + checkpoints._variables[count:][::-1]
    assert checkpoints.restore() == 1
    for variable, expected in zip(restored.variables + restored.optimizer.variables,
                                  model.variables + model.optimizer.variables):  # the same graph: pairs
        np.testing.assert_array_equal(np.asarray(variable), np.asarray(expected), err_msg=variable.path)


@slow
def test_a_save_cut_short_leaves_the_previous_state(tmp_path, monkeypatch):
    model = _tiny_model()
    checkpoints = RunCheckpoints(model, tmp_path)
    images = np.zeros((2, 2, 2, 1), np.int32)
    model.train_on_batch(images, images)
    checkpoints.save()
    saved_weights = model.get_weights()
    model.train_on_batch(images, images)

    def killed(file, **arrays):
        file.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", killed)
    with pytest.raises(OSError):
        checkpoints.save()
    monkeypatch.undo()
    assert sorted(path.name for path in checkpoints.directory.iterdir()) == ["latest.json", "state-1.npz"]
    restored = _tiny_model()
    assert RunCheckpoints(restored, tmp_path).restore() == 1
    for weight, expected in zip(restored.get_weights(), saved_weights):
        np.testing.assert_array_equal(weight, expected)
    with pytest.raises(RunError, match="state-1.npz cannot be read .*variables that do not fit"):
        RunCheckpoints(_tiny_model(hidden=6), tmp_path).restore()


def test_metrics_log_keeps_the_lines_up_to_the_resumed_step_and_sums_minutes(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [{"step": 10, "minutes": 1.0}, {"step": 20, "minutes": 2.0}, {"step": 30, "minutes": 3.0}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"step": 4')  # cut by a kill
    log = MetricsLog(path, step=20)
    assert [json.loads(line) for line in path.read_text().splitlines()] == lines[:2]
    assert log.minutes_before == 2.0


def _fresh_digits_model():
    model = pk.build_model("pixelcnn", (8, 8, 1), 17, num_layers=1, hidden=4)
    model.compile(optimizer=make_optimizer("adam", 2e-3), loss=pk.NegativeLogLikelihood())
    return model


@slow
def test_a_run_directory_of_tensorflow_checkpoints_resumes(tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(LEGACY_RUN, run_dir)
    model = _fresh_digits_model()
    checkpoints = RunCheckpoints(model, run_dir)
    assert checkpoints.saved_step == 4 and checkpoints.restore() == 4
    # The run ended at an epoch end whose validation was its best: best.keras is the same model (its
    # kernels are stored masked, so the likelihoods are compared).
    images = np.random.default_rng(0).integers(0, 17, (4, 8, 8, 1))
    np.testing.assert_allclose(pk.log_prob(model, images),
                               pk.log_prob(pk.load_model(run_dir / "best.keras"), images), rtol=1e-6)
    assert not np.allclose(pk.log_prob(model, images), pk.log_prob(_fresh_digits_model(), images), rtol=1e-3)
    assert checkpoints.best_validation == pytest.approx(3.9940, abs=1e-4)
    training_run.main(["--arch", "pixelcnn", "--dataset", "digits", "--layers", "1", "--hidden", "4",
                       "--batch-size", "8", "--steps", "8", "--steps-per-epoch", "4", "--validation-images", "16",
                       "--gallery-size", "0", "--lr-schedule", "constant", "--run-dir", str(run_dir)])
    out = capsys.readouterr().out
    assert "resuming at step 4" in out and "training finished: 8 steps" in out, out
    assert json.loads((run_dir / "checkpoints" / "latest.json").read_text())["step"] == 8


DIGITS_RUN = ["--arch", "pixelcnn", "--dataset", "digits", "--layers", "1", "--hidden", "4", "--batch-size", "8",
              "--steps-per-epoch", "4", "--validation-images", "16", "--gallery-size", "0", "--lr-schedule",
              "constant", "--max-minutes", "0"]


def _state(run_dir):
    latest = json.loads((run_dir / "checkpoints" / "latest.json").read_text())
    with np.load(run_dir / "checkpoints" / latest["file"]) as saved:
        # the optimizer's paths start with its name, which the process numbers ("adam", "adam_1")
        return latest["step"], {re.sub(r"^adam(_\d+)?/", "adam/", str(path)): saved[f"v{index}"]
                                for index, path in enumerate(saved["paths"])}


@slow
def test_a_run_started_from_a_model_with_its_optimizer_state_continues_it_exactly(tmp_path, capsys):
    """`--initial-model M --initial-optimizer-state` (how a lost run continues from its best.keras
    or a shipped model): the same weights as the run that was never stopped."""
    whole, first, continued = tmp_path / "whole", tmp_path / "first", tmp_path / "continued"
    training_run.main(DIGITS_RUN + ["--steps", "8", "--run-dir", str(whole)])
    training_run.main(DIGITS_RUN + ["--steps", "4", "--run-dir", str(first)])
    capsys.readouterr()
    training_run.main(DIGITS_RUN + ["--steps", "8", "--run-dir", str(continued), "--initial-model",
                                    str(first / "best.keras"), "--initial-optimizer-state"])
    out = capsys.readouterr().out
    assert f"new run in {continued}, from {first / 'best.keras'} at its step 4" in out, out
    assert "training finished: 8 steps" in out, out
    (step, expected), (other_step, got) = _state(whole), _state(continued)
    assert step == other_step == 8 and expected.keys() == got.keys()
    for path, value in expected.items():
        # best.keras stores a masked kernel with its masked-out entries zeroed; they never train
        # (their gradient and moments are 0), so they are the one difference allowed
        unused = (got[path] == 0) & (expected[f"adam/{path.replace('/', '_')}_momentum"] == 0) \
            if path.endswith("kernel") and not path.startswith("adam/") else False
        np.testing.assert_array_equal(np.where(unused, 0, got[path]), np.where(unused, 0, value), err_msg=path)
    recorded = json.loads((continued / "run.json").read_text())["initial_model"]
    assert recorded == {"model": str(first / "best.keras"), "step": 4, "optimizer_state": True}
    training_run.main(DIGITS_RUN + ["--steps", "12", "--run-dir", str(continued)])  # a resume keeps the record
    assert json.loads((continued / "run.json").read_text())["initial_model"] == recorded
    assert "resuming at step 8" in capsys.readouterr().out


@slow
def test_a_run_started_from_a_models_weights_only_restarts_its_optimizer(tmp_path):
    first = tmp_path / "first"
    training_run.main(DIGITS_RUN + ["--steps", "4", "--run-dir", str(first)])
    source = pk.load_model(first / "best.keras")
    model = _fresh_digits_model()
    assert RunCheckpoints(model, tmp_path / "new").start_from(source, False, "first") == 0
    for variable, expected in zip(model.variables, source.variables):
        np.testing.assert_array_equal(np.asarray(variable), np.asarray(expected), err_msg=variable.path)
    assert int(np.asarray(model.optimizer.iterations)) == 0
    assert not np.any(np.asarray(model.optimizer.variables[2]))  # Adam's first moment: fresh


@slow
def test_an_initial_model_that_does_not_fit_is_refused_in_one_line(tmp_path):
    first = tmp_path / "first"
    training_run.main(DIGITS_RUN + ["--steps", "4", "--run-dir", str(first)])
    wider = DIGITS_RUN[:DIGITS_RUN.index("--hidden") + 1] + ["8"] + DIGITS_RUN[DIGITS_RUN.index("--hidden") + 2:]
    with pytest.raises(RunError, match=r"--initial-model .* does not fit this run's model: its variable .* of "
                                       r"shape .* meets .*; it must be the same arch"):
        training_run.main(wider + ["--steps", "4", "--run-dir", str(tmp_path / "wider"), "--initial-model", str(first)])
    with pytest.raises(RunError, match="was trained with Adam, this run with RMSprop: use its --optimizer"):
        training_run.main(DIGITS_RUN + ["--steps", "4", "--optimizer", "rmsprop", "--run-dir", str(tmp_path / "rms"),
                                        "--initial-model", str(first), "--initial-optimizer-state"])
    with pytest.raises(RunError, match="--initial-optimizer-state needs --initial-model"):
        training_run.main(DIGITS_RUN + ["--steps", "4", "--initial-optimizer-state", "--run-dir", str(tmp_path / "x")])
    assert not (tmp_path / "wider" / "run.json").exists() and not (tmp_path / "rms" / "run.json").exists()


def test_schedule_progress_of_a_new_run_from_a_finished_one_is_a_fresh_start():
    """A finished cosine run's rate is 0: a new run from it (--initial-model) divided 0 by 0; it
    starts a schedule of its own. A resumed run reads its progress back from the rate."""
    optimizer = make_optimizer("adam", 0.002)
    optimizer.learning_rate = 0.0
    assert training_run.schedule_progress(optimizer, 12239, None, "cosine") == 0.0
    assert training_run.schedule_progress(optimizer, 12239, {"learning_rate": 0.002}, "cosine") == 1.0
    assert training_run.schedule_progress(optimizer, 12239, {}, "cosine") == 1.0
    optimizer.learning_rate = 0.001
    assert training_run.schedule_progress(optimizer, 5, {"learning_rate": 0.002}, "cosine") == pytest.approx(0.5)
    assert training_run.schedule_progress(optimizer, 5, {"learning_rate": 0.002}, "constant") == 0.0


@slow
def test_the_shipped_finished_cosine_run_continues_with_a_fresh_schedule(tmp_path, capsys, monkeypatch):
    """The README's `--initial-model pretrained:fashion_mnist_pixelcnn_6x48 --initial-optimizer-state`
    raised ZeroDivisionError (its cosine had decayed to 0): it trains, on a fresh schedule, saying so."""
    import training.evaluate

    monkeypatch.setattr(training.evaluate, "evaluate_model", lambda *a, **k: None)  # 10,000 test images: not the point
    run_dir = tmp_path / "continued"
    training_run.main(["--arch", "pixelcnn", "--initial-model", "pretrained:fashion_mnist_pixelcnn_6x48",
                       "--initial-optimizer-state", "--steps", "12242", "--max-minutes", "0", "--gallery-size", "0",
                       "--validation-images", "16", "--run-dir", str(run_dir)])
    out = capsys.readouterr().out
    assert "at its step 12239" in out and "training finished: 12242 steps" in out, out
    assert ("a fresh cosine schedule from learning rate 0.002 to 0 over this run's steps and minutes (its own "
            "schedule had ended: rate 0)") in out, out
    assert json.loads((run_dir / "checkpoints" / "latest.json").read_text())["step"] == 12242
