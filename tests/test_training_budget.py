"""`pixel_keras.fitting.TrainingBudget`: the end of training by steps or by the clock, and the cosine
schedule that ends there (run under JAX too: `tests/test_backends.py::BACKEND_SENSITIVE`)."""

import keras
import numpy as np
import pytest

from pixel_keras import fitting
from pixel_keras.fitting import TrainingBudget, cosine_factor, cosine_progress, make_optimizer


class FakeClock:
    """Stands for the `time` module in `pixel_keras.fitting`; moved on by `Tick`."""

    def __init__(self):
        self.now = 1000.0

    def perf_counter(self):
        return self.now


class Tick(keras.callbacks.Callback):
    """Moves the fake clock `seconds` on after every step (before the budget looks at it)."""

    def __init__(self, clock, seconds):
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def on_train_batch_end(self, batch, logs=None):
        self.clock.now += self.seconds


class Rates(keras.callbacks.Callback):
    """The learning rate set for each step (read without a JAX state sync, which would hide a rate
    the training step never saw; `_fit` checks what it saw)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_begin(self, batch, logs=None):
        self.seen.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


def _fit(callbacks, steps_per_epoch=3, epochs=10, optimizer=None):
    """A one-weight model fitted by plain gradient descent on a loss of gradient 1, so its weight
    moves by exactly the learning rate of each step: checked against the rates `Rates` saw."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    model.compile(optimizer or keras.optimizers.SGD(0.01), lambda y_true, y_pred: keras.ops.mean(y_pred))
    data = np.ones((steps_per_epoch * 4, 1), np.float32)
    model.fit(data, data, batch_size=4, epochs=epochs, verbose=0, callbacks=callbacks)
    rates = next(callback for callback in callbacks if isinstance(callback, Rates)).seen
    np.testing.assert_allclose(-float(model.get_weights()[0][0, 0]), sum(rates), rtol=1e-5)
    return model


def _final_rate(model):
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def test_cosine_over_the_steps_ends_training_at_exactly_zero():
    rates = Rates()
    model = _fit([TrainingBudget(0, 8, "cosine", 0.01), rates])  # 10 epochs of 3 steps, stopped at 8
    assert len(rates.seen) == 8 and int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 8
    np.testing.assert_allclose(rates.seen, [0.01 * cosine_factor(k / 8) for k in range(8)], rtol=1e-6)
    assert _final_rate(model) == 0.0


def test_cosine_ends_with_the_clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(fitting, "time", clock)
    rates = Rates()
    budget = TrainingBudget(1.0, None, "cosine", 0.01)  # one minute, no step limit
    model = _fit([Tick(clock, 10.0), budget, rates])  # 10 s a step: stops once 60 s have passed
    assert budget.exhausted and len(rates.seen) == 6
    np.testing.assert_allclose(rates.seen, [0.01 * cosine_factor(10 * k / 60) for k in range(6)], rtol=1e-6)
    assert _final_rate(model) == 0.0 and budget.progress() == 1.0


def test_the_larger_of_steps_and_clock_drives_the_decay_and_a_resume_continues_it(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(fitting, "time", clock)
    rates = Rates()
    # 20 steps in 1 minute at 1 s a step: the steps lead; a clock of 10 s a step leads instead.
    _fit([Tick(clock, 1.0), TrainingBudget(1.0, 20, "cosine", 0.01), rates], epochs=2)  # 6 steps
    np.testing.assert_allclose(rates.seen, [0.01 * cosine_factor(k / 20) for k in range(6)], rtol=1e-6)
    rates.seen.clear()
    _fit([Tick(clock, 10.0), TrainingBudget(1.0, 20, "cosine", 0.01), rates], epochs=2)
    np.testing.assert_allclose(rates.seen, [0.01 * cosine_factor(k / 6) for k in range(6)], rtol=1e-6)
    # A run resumed at step 6 of 20 at progress 0.3 (cosine_progress of its rate) spreads the rest of
    # its decay over the steps left: 0.3 + 0.7 * (step - 6) / 14.
    optimizer = keras.optimizers.SGD(0.01)
    optimizer.iterations.assign(6)
    rates.seen.clear()
    start = cosine_progress(cosine_factor(0.3))
    assert start == pytest.approx(0.3, abs=1e-9)
    _fit([Tick(clock, 1.0), TrainingBudget(0, 20, "cosine", 0.01, start_progress=start), rates], epochs=2,
         optimizer=optimizer)
    expected = [0.01 * cosine_factor(0.3 + 0.7 * k / 14) for k in range(6)]
    np.testing.assert_allclose(rates.seen, expected, rtol=1e-6)


def test_constant_rate_and_a_clock_that_only_stops(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(fitting, "time", clock)
    rates = Rates()
    budget = TrainingBudget(1.0, None, "constant")
    model = _fit([Tick(clock, 10.0), budget, rates])
    assert budget.exhausted and rates.seen == [pytest.approx(0.01)] * 6 and _final_rate(model) == pytest.approx(0.01)
    # Workers whose clocks differ decay by steps only; their clocks still stop them.
    rates.seen.clear()
    budget = TrainingBudget(1.0, 20, "cosine", 0.01, clock_in_schedule=False)
    model = _fit([Tick(clock, 10.0), budget, rates])
    assert budget.exhausted and len(rates.seen) == 6
    np.testing.assert_allclose(rates.seen, [0.01 * cosine_factor(k / 20) for k in range(6)], rtol=1e-6)
    assert _final_rate(model) == pytest.approx(0.01 * cosine_factor(6 / 20))  # not ended: a re-run continues


def test_optimizers_and_bad_settings():
    assert isinstance(make_optimizer("adam"), keras.optimizers.Adam)
    assert float(make_optimizer("adam").learning_rate) == pytest.approx(fitting.DEFAULT_LEARNING_RATES["adam"])
    assert float(make_optimizer("rmsprop", 0.01).learning_rate) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="optimizer='sgd'"):
        make_optimizer("sgd", 0.01)
    with pytest.raises(ValueError, match="lr_schedule='linear'"):
        TrainingBudget(1.0, None, "linear")
    with pytest.raises(ValueError, match="learning_rate=None"):
        TrainingBudget(1.0, None, "cosine")
    from benchmarks.ours import OurModel

    with pytest.raises(ValueError, match="lr_schedule='linear'"):  # a benchmark spec, before any model is built
        OurModel("pixelcnn", (2, 2, 1), 4, lr_schedule="linear")
    assert [cosine_factor(p) for p in (-1.0, 0.0, 0.5, 1.0, 2.0)] == [1.0, 1.0, pytest.approx(0.5), 0.0, 0.0]
    assert [cosine_progress(f) for f in (1.0, 0.5, 0.0)] == [0.0, pytest.approx(0.5), 1.0]
