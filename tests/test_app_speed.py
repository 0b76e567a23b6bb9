"""Issue 30: the app trains at the bare step's rate. What can be checked without timing: one device
gets no distribution strategy's machinery, and the early forecast line names the right limit."""

import subprocess
import sys

import pytest

from tests.test_training_app import ROOT
from tests.tiers import slow


@pytest.mark.tensorflow
@slow
def test_one_device_trains_under_the_default_strategy_not_a_mirrored_one():
    # A subprocess: --devices N > 1 splits the CPU into logical devices once per process.
    code = ("import tensorflow as tf\n"
            "from training.distribution import make_strategy\n"
            "one = make_strategy(None)\n"
            "print(type(one).__name__, one is tf.distribute.get_strategy(), one.num_replicas_in_sync)\n"
            "two = make_strategy(2)\n"
            "print(type(two).__name__, two.num_replicas_in_sync)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    one, two = done.stdout.split("\n")[-3:-1]
    assert one.split()[1:] == ["True", "1"], one
    assert two.split() == ["MirroredStrategy", "2"], two


def _budget(step, total_steps, minutes, seconds_spent=0.0):
    """A real TrainingBudget whose clock started `seconds_spent` ago, at optimizer step `step`."""
    from pixel_keras.fitting import TrainingBudget

    budget = TrainingBudget(minutes, total_steps)
    budget._start -= seconds_spent
    budget.step = step
    return budget


def test_forecast_names_the_limit_that_ends_the_run_first():
    from training.callbacks import Forecast

    # 10 steps/s, 20 minutes left: 12,000 steps by the clock, 20,000 - 100 by --steps
    line = Forecast(_budget(100, 20000, 20.0), global_batch=16).message(10.0)
    assert "160 images/s" in line and "step 12,100 (set by --max-minutes)" in line and "about 20 min" in line
    # fewer steps than the clock allows
    line = Forecast(_budget(100, 600, 20.0), global_batch=16).message(10.0)
    assert "step 600 (set by --steps)" in line and "about 1 min" in line
    # the clock already half spent
    line = Forecast(_budget(0, None, 10.0, seconds_spent=300.0), global_batch=16).message(2.0)
    assert "step 600 (set by --max-minutes)" in line
    assert "no step or time limit" in Forecast(_budget(0, None, 0.0), global_batch=16).message(2.0)


def test_forecast_prints_once_after_its_timed_steps():
    from training.callbacks import Forecast

    lines = []
    forecast = Forecast(_budget(0, 1000, 0.0), global_batch=4, skip=2, steps=3, print_fn=lines.append)
    for batch in range(10):
        forecast.budget.step += 1
        forecast.on_train_batch_end(batch)
        assert len(lines) == (1 if batch >= 4 else 0)
    assert "(set by --steps)" in lines[0]
