"""The training application end to end: a tiny run, resume after SIGKILL, errors, distribution."""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.processes import kill_once
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from pixel_keras.cli import RunError
from pixel_keras.fitting import cosine_factor
from pixel_keras.io import load_model
from training import run as training_run
from training import run_arguments
from tests.tiers import slow

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--dataset", "digits", "--layers", "1", "--hidden", "8", "--batch-size", "16"]


def _python(args, env=None, timeout=300):
    """Run `python args...` from the repository root; returns the CompletedProcess."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.run([sys.executable] + args, cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=timeout)


def _tensor_values(log_dir, tag):
    events = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    events.Reload()
    return [event for event in events.Tensors(tag)] if tag in events.Tags()["tensors"] else []


def _scalar(event):
    proto = event.tensor_proto
    return float(proto.float_val[0]) if proto.float_val else float(np.frombuffer(proto.tensor_content, np.float32)[0])


def _steps(log_dir, tag):
    return [event.step for event in _tensor_values(log_dir, tag)]


@slow
def test_tiny_run_writes_checkpoints_summaries_and_lowers_the_loss(tmp_path, capsys):
    run_dir = tmp_path / "run"
    command = ["--arch", "pixelcnn", *TINY, "--steps", "60", "--steps-per-epoch", "20", "--gallery-size", "2",
               "--run-dir", str(run_dir)]
    training_run.main(command)
    out = capsys.readouterr().out
    assert "test NLL on 359 digits test images" in out and "bits/dim" in out
    assert f"tensorboard --logdir {run_dir / 'logs'}" in out
    assert (run_dir / "best.keras").exists() and (run_dir / "gallery" / "samples.png").exists()
    assert (run_dir / "checkpoints" / "state-60.npz").exists()
    assert [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [20, 40, 60]
    losses = [_scalar(event) for event in _tensor_values(run_dir / "logs" / "train", "epoch_loss")]
    assert len(losses) == 3 and losses[-1] < losses[0]
    for tag in ("epoch_bits_per_dim", "epoch_images_per_second", "epoch_learning_rate"):
        assert _tensor_values(run_dir / "logs" / "train", tag), tag
    assert _tensor_values(run_dir / "logs" / "validation", "epoch_loss")
    # One step axis, the optimizer step, for scalars and galleries; the last gallery is not drawn again.
    assert _steps(run_dir / "logs" / "train", "epoch_loss") == [20, 40, 60]
    assert _steps(run_dir / "logs" / "validation", "epoch_loss") == [20, 40, 60]
    for tag in ("samples", "completions"):
        assert _steps(run_dir / "logs" / "gallery", tag) == [20, 40, 60], tag
    gallery_png = (run_dir / "gallery" / "samples.png").read_bytes()

    training_run.main(command)  # re-running a finished run reports it again
    out = capsys.readouterr().out
    assert "the run is already complete: 60 steps" in out and "test NLL on 359 digits test images" in out
    assert f"sample gallery: {run_dir / 'gallery' / 'samples.png'}" in out
    assert (run_dir / "gallery" / "samples.png").read_bytes() == gallery_png
    assert _steps(run_dir / "logs" / "gallery", "samples") == [20, 40, 60]
    (run_dir / "gallery" / "gallery.json").unlink()  # as in a run directory of older code: drawn again
    training_run.main(command)
    assert "the run is already complete: 60 steps" in capsys.readouterr().out
    assert _steps(run_dir / "logs" / "gallery", "samples") == [20, 40, 60, 60]
    evaluation = _python(["-m", "training.evaluate", "--run-dir", str(run_dir)])
    assert evaluation.returncode == 0 and "test NLL on 359 digits test images" in evaluation.stdout


@slow
def test_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "training.run", "--arch", "pixelcnn", *TINY, "--steps", "600",
               "--steps-per-epoch", "200", "--checkpoint-every", "10", "--gallery-every", "0",
               "--run-dir", str(run_dir)]
    environment = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    kill_once(process, lambda: list((run_dir / "checkpoints").glob("state-3*.npz")))
    saved = json.loads((run_dir / "checkpoints" / "latest.json").read_text())["step"]
    assert 0 < saved < 600
    resumed = _python(command[1:], timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming at step {saved}" in resumed.stdout
    assert "training finished: 600 steps" in resumed.stdout
    # The cosine (the default schedule) goes on from where the killed run was: the rate of step 400 is
    # the one a run without the kill had (steps lead its progress: this run is far from its 20 minutes).
    rate = [_scalar(event) for event in _tensor_values(run_dir / "logs" / "train", "epoch_learning_rate")
            if event.step == 400]
    assert saved < 400 and rate == [pytest.approx(2e-3 * cosine_factor(400 / 600), rel=1e-3)]


@slow
def test_resume_refuses_other_settings_and_unreadable_checkpoints(tmp_path):
    run_dir = tmp_path / "run"
    base = ["-m", "training.run", "--arch", "pixelcnn", *TINY, "--steps", "10", "--gallery-every", "0",
            "--run-dir", str(run_dir)]
    assert _python(base).returncode == 0
    other = _python(base[:-2] + ["--hidden", "4", "--run-dir", str(run_dir)])
    assert other.returncode != 0 and "other settings" in other.stderr and "Traceback" not in other.stderr
    for data in (run_dir / "checkpoints").glob("state-*.npz"):
        data.write_bytes(b"corrupt")
    corrupt = _python(base)
    assert corrupt.returncode != 0 and "cannot be read" in corrupt.stderr and "Traceback" not in corrupt.stderr
    for data in (run_dir / "checkpoints").glob("state-*"):
        data.unlink()
    missing = _python(base)
    assert missing.returncode != 0 and "files are missing" in missing.stderr and "Traceback" not in missing.stderr


def _error_of(run_dir, args, env=None):
    result = _python(["-m", "training.run", "--arch", "pixelcnn", "--steps", "1", "--run-dir", str(run_dir), *args],
                     env=env)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:") or ": error: " in line]
    assert result.returncode != 0 and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return errors[0]


@slow
def test_bad_input_gives_one_line_errors(tmp_path):
    from PIL import Image

    assert "unknown --arch 'pixel_cnn'" in _error_of(tmp_path / "run", ["--arch", "pixel_cnn"])
    assert "argument --dropout: must be a finite number in [0, 1); received 1.5" in _error_of(tmp_path / "run",
                                                                                            ["--dropout", "1.5"])
    assert "'no_such_dataset'" in _error_of(tmp_path / "run", ["--dataset", "no_such_dataset", "--data-dir", str(tmp_path / "tfds")])
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "0 readable PNG/JPEG images" in _error_of(tmp_path / "run", ["--dataset", f"folder:{empty}"])
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"not a png")  # unreadable files are skipped; none left is an error
    assert "broken.png" in _error_of(tmp_path / "run", ["--dataset", f"folder:{folder}"])
    missing = _error_of(tmp_path / "run", ["--data-dir", str(tmp_path / "tfds")],
                        env={"PIXEL_KERAS_FASHION_MNIST_DIR": str(tmp_path / "nowhere")})
    assert "Fashion-MNIST not found" in missing and "apt-get install dataset-fashion-mnist" in missing


_FIRST_STEPS = """
import sys
from training.distribution import make_strategy
strategy = make_strategy(int(sys.argv[1]))
import keras, numpy as np, pixel_keras as pk
keras.utils.set_random_seed(0)
images = np.random.default_rng(0).integers(0, 4, (8, 4, 4, 1)).astype(np.int32)
with strategy.scope():
    model = pk.build_model("pixelcnn", (4, 4, 1), 4, num_layers=1, hidden=4)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-2), loss=pk.NegativeLogLikelihood())
losses = [float(model.train_on_batch(images, images)) for _ in range(3)]
print("replicas", strategy.num_replicas_in_sync, "losses", *losses)
"""


@slow
def test_two_cpu_replicas_give_the_same_losses_as_one():
    results = {}
    for devices in (1, 2):
        result = _python(["-c", _FIRST_STEPS, str(devices)])
        assert result.returncode == 0, result.stderr[-2000:]
        words = result.stdout.split()
        assert int(words[1]) == devices
        results[devices] = np.array(words[3:], float)
    np.testing.assert_allclose(results[2], results[1], atol=1e-5)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@slow
def test_multi_worker_run_on_localhost(tmp_path):
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    command = [sys.executable, "-m", "training.run", "--arch", "pixelcnn", *TINY, "--steps", "4",
               "--steps-per-epoch", "2", "--gallery-every", "0", "--validation-images", "32",
               "--run-dir", str(tmp_path / "run")]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        environment = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2",
                           TF_CONFIG=json.dumps(tf_config))
        processes.append(subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    assert "2 replica(s)" in outputs[0][0] and "training finished: 4 steps" in outputs[0][0]
    assert "test NLL" in outputs[0][0]
    assert (tmp_path / "run" / "best.keras").exists()


@slow
def test_steps_are_exact_and_checked(tmp_path, capsys):
    run_dir = tmp_path / "run"
    training_run.main(["--arch", "pixelcnn", *TINY, "--steps", "3", "--steps-per-epoch", "2", "--gallery-size", "0",
                       "--validation-images", "16", "--run-dir", str(run_dir)])
    out = capsys.readouterr().out
    assert "training finished: 3 steps" in out and "sample gallery: none (--gallery-size 0)" in out
    assert (run_dir / "checkpoints" / "state-3.npz").exists() and not (run_dir / "gallery").exists()
    # (initial_epoch, epochs, steps per epoch) of the next fit: rest of an epoch, whole epochs, last part.
    assert [training_run.next_fit(step, 7, 2) for step in (0, 1, 6)] == [(0, 3, 2), (0, 1, 1), (3, 4, 1)]
    for flags, message in ((["--steps", "0"], "--steps: must be an integer >= 1"), (["--steps", "-1"], "received -1"),
                           (["--gallery-size", "-1"], "--gallery-size: must be an integer >= 0")):
        with pytest.raises(SystemExit):
            training_run.parse_args(["--arch", "pixelcnn", *flags])
        assert message in capsys.readouterr().err


@slow
def test_a_failed_start_leaves_no_run_json(tmp_path):
    run_dir = tmp_path / "run"
    error = _error_of(run_dir, ["--dataset", "digits", "--devices", "2", "--batch-size", "3"])
    assert "--batch-size 3" in error and "multiple of the 2 replicas" in error
    assert not (run_dir / "run.json").exists()


def test_learning_rate_default_per_optimizer_and_a_resume_keeps_its_own(tmp_path):
    def rate(*flags):
        args = training_run.parse_args(["--arch", "pixelcnn", *TINY, "--run-dir", str(tmp_path), *flags])
        return training_run.check_run_config(tmp_path, args)[0]["learning_rate"]

    assert (rate(), rate("--optimizer", "rmsprop"), rate("--learning-rate", "0.01")) == (2e-3, 1e-3, 0.01)
    args = training_run.parse_args(["--arch", "pixelcnn", *TINY, "--run-dir", str(tmp_path)])
    config, _ = training_run.check_run_config(tmp_path, args)
    training_run.write_run_config(tmp_path, {**config, "learning_rate": 1e-3})  # a run from before the default
    assert rate() == 1e-3 and rate("--learning-rate", "0.0005") == 5e-4  # resumes at its own rate unless told


def test_run_json_settings_on_resume(tmp_path):
    args = training_run.parse_args(["--arch", "pixelcnn", *TINY, "--steps-per-epoch", "20", "--run-dir",
                                    str(tmp_path)])
    config, saved = training_run.check_run_config(tmp_path, args)
    assert saved is None and config["steps_per_epoch"] == 20 and config["validation_images"] == 1000
    old = {key: value for key, value in config.items() if key not in ("steps_per_epoch", "validation_images")}
    (tmp_path / "run.json").write_text(json.dumps(old))  # a run.json from before these keys: resumable
    assert training_run.check_run_config(tmp_path, args) == (config, old)
    training_run.write_run_config(tmp_path, config)
    args.learning_rate, args.max_minutes = 1e-4, 5.0  # may change on resume
    assert training_run.check_run_config(tmp_path, args)[0]["learning_rate"] == 1e-4
    # A cosine run of the code before the budget-long cosine (no max_minutes recorded): its checkpoints
    # hold no learning-rate variable, so it is refused before anything is read.
    (tmp_path / "run.json").write_text(json.dumps({k: v for k, v in config.items() if k != "max_minutes"}))
    with pytest.raises(RunError, match="decayed over its steps only .* cannot resume it: start a new --run-dir"):
        training_run.check_run_config(tmp_path, args)
    training_run.write_run_config(tmp_path, config)
    for key, value in (("steps_per_epoch", 30),):  # validation_images may change (tests/test_hostile_inputs.py)
        changed = training_run.parse_args(["--arch", "pixelcnn", *TINY, "--steps-per-epoch", "20", "--run-dir",
                                           str(tmp_path), f"--{key.replace('_', '-')}", str(value)])
        with pytest.raises(RunError, match=f"{key}: .* -> {value}"):
            training_run.check_run_config(tmp_path, changed)
    # A run.json from before a model-changing key resumes only with what the older code used.
    legacy = {key: value for key, value in config.items() if key not in run_arguments.LEGACY_VALUES}
    (tmp_path / "run.json").write_text(json.dumps(legacy))
    # Older code trained with RMSProp at a constant rate, today's defaults are Adam and a cosine: the
    # refusal names the flags that resume.
    with pytest.raises(RunError, match=r"optimizer: 'rmsprop' -> 'adam'; lr_schedule: 'constant' -> 'cosine'\); "
                                       r"use its settings to resume \(e\.g\. --optimizer rmsprop --lr-schedule "
                                       r"constant\)"):
        training_run.check_run_config(tmp_path, args)
    args.optimizer, args.lr_schedule = "rmsprop", "constant"
    assert training_run.check_run_config(tmp_path, args)[1] == legacy
    for flags, change in ((["--multiscale", "2"], "multiscale: None -> 2"),
                          (["--head", "logistic_mixture"], "head: 'categorical' -> 'logistic_mixture'")):
        changed = training_run.parse_args(["--arch", "pixelcnn", *TINY, "--steps-per-epoch", "20", "--run-dir",
                                           str(tmp_path), *flags])
        with pytest.raises(RunError, match=change):
            training_run.check_run_config(tmp_path, changed)


@slow
def test_a_cosine_run_ends_with_its_time_budget_and_a_constant_one_continues(tmp_path, capsys, monkeypatch):
    from pixel_keras import fitting

    class Clock:  # a second per reading: TrainingBudget reads it twice a step
        now = 0.0

        def perf_counter(self):
            self.now += 1.0
            return self.now

    monkeypatch.setattr(fitting, "time", Clock())
    outs = {}
    for schedule in ("cosine", "constant"):
        command = ["--arch", "pixelcnn", *TINY, "--steps", "50", "--steps-per-epoch", "4", "--gallery-size", "0",
                   "--validation-images", "16", "--max-minutes", "0.1", "--lr-schedule", schedule,
                   "--run-dir", str(tmp_path / schedule)]
        training_run.main(command)
        training_run.main(command)
        outs[schedule] = capsys.readouterr().out
    first = re.search(r"training finished: (\d+) steps, where the cosine schedule ended with the 0.1-minute budget",
                      outs["cosine"])
    assert first and 0 < int(first[1]) < 50, outs["cosine"]
    assert f"the run is already complete: {first[1]} steps (of 50), its cosine schedule ended" in outs["cosine"]
    spent = re.findall(r"time budget of 0.1 minutes spent at step (\d+); run the same command again to continue",
                       outs["constant"])
    assert len(spent) == 2 and 0 < int(spent[0]) < int(spent[1]) < 50, outs["constant"]


@slow
def test_divergence_keeps_a_state_with_finite_loss_and_resumes_with_a_lower_rate(tmp_path, capsys):
    import pixel_keras as pk
    from pixel_keras.data import load_dataset
    from pixel_keras.fitting import make_optimizer
    from training.checkpoints import RunCheckpoints

    run_dir = tmp_path / "run"
    base = ["--arch", "pixelcnn", "--dataset", "digits", "--layers", "1", "--hidden", "4", "--batch-size", "8",
            "--steps-per-epoch", "4", "--checkpoint-every", "1", "--gallery-size", "0", "--validation-images", "16",
            "--lr-schedule", "constant", "--run-dir", str(run_dir)]  # a cosine run would be complete at --steps 4
    training_run.main(base + ["--steps", "4"])
    # Step 5 (weights of step 4) has a finite loss, its update at this rate makes step 6 NaN.
    with pytest.raises(RunError, match=r"NaN; training stopped at step 6\. The last state") as stopped:
        training_run.main(base + ["--steps", "8", "--learning-rate", "1e8"])
    splits = load_dataset("digits")
    model = pk.build_model("pixelcnn", splits.image_shape, splits.num_levels, num_layers=1, hidden=4)
    app = training_run.parse_args(base)
    optimizer = make_optimizer(app.optimizer, 1e-3)  # the app's, whatever its defaults
    model.compile(optimizer=optimizer, loss=pk.NegativeLogLikelihood())
    kept_step = RunCheckpoints(model, run_dir).restore()
    assert all(np.isfinite(weight).all() for weight in model.get_weights())
    images = np.stack(list(splits.train.take(8).as_numpy_iterator())).astype(np.int32)
    assert np.isfinite(model.evaluate(images, images, verbose=0))
    assert kept_step == 4 and "(step 4)" in str(stopped.value)
    capsys.readouterr()
    training_run.main(base + ["--steps", "8", "--learning-rate", "0.001"])  # without it: the run's own 1e8
    out = capsys.readouterr().out
    assert "resuming at step 4" in out and "learning rate 100000000.0 -> 0.001" in out
    assert "training finished: 8 steps" in out


def test_best_keras_is_replaced_atomically(tmp_path, monkeypatch):
    import keras

    import pixel_keras as pk
    from training.checkpoints import RunCheckpoints

    model = pk.build_model("pixelcnn", (2, 2, 1), 4, num_layers=1, hidden=4)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss=pk.NegativeLogLikelihood())
    checkpoints = RunCheckpoints(model, tmp_path)
    checkpoints.save_if_best(2.0)

    def interrupted_save(path, *args, **kwargs):
        pathlib.Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(model, "save", interrupted_save)
    with pytest.raises(OSError):
        checkpoints.save_if_best(1.0)
    load_model(checkpoints.best_path)  # the previous best, whole
    assert checkpoints.best_validation == 2.0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["best.keras"]


def test_a_kept_state_is_saved_as_it_was(tmp_path):
    import keras

    import pixel_keras as pk
    from training.checkpoints import RunCheckpoints

    def tiny_model():
        model = pk.build_model("pixelcnn", (2, 2, 1), 4, num_layers=1, hidden=4)
        model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss=pk.NegativeLogLikelihood())
        return model

    model = tiny_model()
    checkpoints = RunCheckpoints(model, tmp_path)
    kept, kept_weights = checkpoints.state(), model.get_weights()
    images = np.zeros((2, 2, 2, 1), np.int32)
    model.train_on_batch(images, images)  # step 1: other weights
    later_weights = model.get_weights()
    checkpoints.save(kept)
    assert checkpoints.saved_step == 0 and checkpoints.step == 1  # written as step 0; step 1 stays current
    for now, later in zip(model.get_weights(), later_weights):
        np.testing.assert_array_equal(now, later)
    restored = tiny_model()
    assert RunCheckpoints(restored, tmp_path).restore() == 0
    for weight, expected in zip(restored.get_weights(), kept_weights):
        np.testing.assert_array_equal(weight, expected)
