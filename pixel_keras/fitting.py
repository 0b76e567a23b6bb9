"""What every training loop of ours shares (the training app and the benchmarks): the optimizer
with its learning-rate schedule, a wall-clock budget, and the training view of a model (the fast
loss of the logistic mixture head). In the library so no app imports another."""

import math
import time

import keras

from pixel_keras import heads
from pixel_keras.deprecation import moved, no_attribute
from pixel_keras.head_registry import observed_view
from pixel_keras.losses import NegativeLogLikelihood
from pixel_keras.settings import DEFAULT_LEARNING_RATES, LR_SCHEDULES, OPTIMIZERS


def __getattr__(name):
    if name == "MixtureNegativeLogLikelihood":  # the mixture head's loss, with its head (CHANGELOG.md)
        return moved(__name__, name, heads)
    raise no_attribute(__name__, name)


def check_lr_schedule(schedule):
    """Refuse a learning-rate schedule other than `LR_SCHEDULES`, naming it."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"Expected lr_schedule to be one of {LR_SCHEDULES}. Received lr_schedule={schedule!r}.")


def make_optimizer(name, learning_rate=None, weight_decay=0.0):
    """A Keras optimizer: "rmsprop" or "adam" at `learning_rate` (None: `DEFAULT_LEARNING_RATES`),
    with Keras' decoupled `weight_decay` where > 0. The rate is a variable of the optimizer
    (checkpoints keep it), which `TrainingBudget` sets after every step, for the next, when a
    schedule decays it."""
    if name not in OPTIMIZERS:
        raise ValueError(f"Expected optimizer to be one of {OPTIMIZERS}. Received optimizer={name!r}.")
    if learning_rate is None:
        learning_rate = DEFAULT_LEARNING_RATES[name]
    if not isinstance(weight_decay, (int, float)) or isinstance(weight_decay, bool) or weight_decay < 0:
        raise ValueError(f"Expected weight_decay to be a number >= 0. Received weight_decay={weight_decay!r}.")
    decay = {"weight_decay": float(weight_decay)} if weight_decay else {}
    return {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam}[name](learning_rate, **decay)


def cosine_factor(progress):
    """The cosine schedule's rate as a fraction of its initial rate, at `progress` in [0, 1]
    (exactly 0 at 1 and beyond)."""
    return 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def cosine_progress(factor):
    """The inverse of `cosine_factor`: how far along a cosine schedule is whose rate is `factor`
    times its initial rate (1 when the rate is 0: the schedule has ended)."""
    return math.acos(min(max(2.0 * factor - 1.0, -1.0), 1.0)) / math.pi


class TrainingBudget(keras.callbacks.Callback):
    """The end of training and, with a cosine schedule, the learning rate on the way there.

    Training stops (after the current step, so that `fit` validates and checkpoints) at
    `total_steps` or once `minutes` have passed since the callback was made, whichever comes
    first, across however many `fit` calls use it. With `schedule="cosine"` the rate falls from
    `learning_rate` to 0 along a cosine of the progress towards that end: the larger of the steps'
    and the clock's fractions, so a run cut short by its time budget still ends its decay (the rate
    is set after every step for the next; a run that stops on the clock leaves it at exactly 0). A
    resumed run passes the progress it had reached (`cosine_progress` of its restored rate) as
    `start_progress`; the rest of the decay spreads over this invocation's steps and minutes.

    Args:
        minutes: wall-clock budget (0: none).
        total_steps: optimizer step at which training ends (None: none).
        schedule: "constant" (the rate is left alone) or "cosine".
        learning_rate: the cosine's initial rate.
        start_progress: the cosine's progress when this invocation starts, in [0, 1).
        clock_in_schedule: False to decay by steps only (workers whose clocks differ must agree on
            the rate); the clock still stops training.
    """

    def __init__(self, minutes, total_steps=None, schedule="constant", learning_rate=None, start_progress=0.0,
                 clock_in_schedule=True):
        super().__init__()
        check_lr_schedule(schedule)
        if schedule == "cosine" and learning_rate is None:
            raise ValueError("A cosine schedule needs its initial learning_rate. Received learning_rate=None.")
        self.seconds = minutes * 60.0
        self.total_steps = total_steps
        self.schedule = schedule
        self.learning_rate = learning_rate
        self.start_progress = start_progress
        self.clock_in_schedule = clock_in_schedule
        self.exhausted = False  # the clock ran out
        self._start = time.perf_counter()
        self._first_step = None
        self.step = None

    def seconds_left(self):
        """Seconds of the time budget left (None: no time budget)."""
        return max(self.seconds - (time.perf_counter() - self._start), 0.0) if self.seconds > 0 else None

    def progress(self):
        """How far this run is towards its end, in [0, 1]."""
        if self._first_step is None:  # not trained yet
            return self.start_progress
        fractions = [0.0]
        if self.total_steps is not None and self.total_steps > self._first_step:
            fractions.append((self.step - self._first_step) / (self.total_steps - self._first_step))
        elif self.total_steps is not None:
            fractions.append(1.0)
        if self.seconds > 0 and self.clock_in_schedule:
            fractions.append((time.perf_counter() - self._start) / self.seconds)
        return min(1.0, self.start_progress + (1.0 - self.start_progress) * max(fractions))

    def on_train_begin(self, logs=None):
        # The step is counted from here on, not read: under JAX, Keras detaches the variables during
        # an epoch and reading them needs a state sync.
        self.step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if self._first_step is None:
            self._first_step = self.step
        self._set_rate()

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        out_of_time = self.seconds > 0 and time.perf_counter() - self._start >= self.seconds
        self.exhausted = self.exhausted or out_of_time
        if out_of_time or (self.total_steps is not None and self.step >= self.total_steps):
            self.model.stop_training = True
        self._set_rate()

    def _set_rate(self):
        """The rate of the next step (0 once the decay has ended), so that the rate a checkpoint
        holds is the one its step resumes with. No JAX state sync is needed: the training step reads
        the rate set here (tests/test_training_budget.py checks the weights' moves, under JAX too)."""
        if self.schedule == "cosine":
            self.model.optimizer.learning_rate = self.learning_rate * cosine_factor(self.progress())


def training_view(model):
    """(model to fit, its loss) for a model from `build_model` / `build_multiscale_model`: its
    head's `head_registry.observed_view`.

    Categorical head: the model itself and `NegativeLogLikelihood()`. Logistic mixture head: its
    `heads.parameter_view` (the same layers and weights, outputting the head's parameters) with
    `MixtureNegativeLogLikelihood`, which scores the observed level only. Fitting the view trains
    `model`; `model` itself keeps the per-level output that the samplers, codec and export read,
    and is what to save.
    """
    observed = observed_view(model)
    return observed.model, observed.loss


def compile_for_training(model, optimizer, jit_compile="auto"):
    """Compile `model` (loss `NegativeLogLikelihood`, for evaluation and checkpoints) and its
    `training_view` with the same `optimizer` object; returns the model to `fit` (`model` itself for
    the categorical head). Both hold the same variables and one optimizer state, so a checkpoint of
    `model` and `model.optimizer` is the whole training state, whichever of the two was fitted."""
    fit_model, loss = training_view(model)
    model.compile(optimizer=optimizer, loss=NegativeLogLikelihood(), jit_compile=jit_compile)
    if fit_model is not model:
        fit_model.compile(optimizer=optimizer, loss=loss, jit_compile=jit_compile)
    return fit_model


class ModelKeeper(keras.callbacks.Callback):
    """A callback that stays on the model it was kept on (`keep(model)`) when `fit` runs on another
    one (`fit` sets every callback's model to the model it fits, a training view): for callbacks
    that need the full model's per-level output, e.g. a sampling gallery. Until kept, it follows
    `fit` as any callback."""

    _kept = None

    def keep(self, model):
        """Set the callback's model to `model` for good; returns the callback."""
        self._kept = model
        super().set_model(model)
        return self

    def set_model(self, model):
        super().set_model(model if self._kept is None else self._kept)


def keep_model(callback, model):
    """`callback.keep(model)`: the `ModelKeeper` set to `model` and kept there when `fit` runs on a
    training view. Returns `callback`.

    Raises:
        TypeError: for a callback that is not a `ModelKeeper`.
    """
    if not isinstance(callback, ModelKeeper):
        raise TypeError(f"Expected a pixel_keras.fitting.ModelKeeper callback. Received {type(callback).__name__}.")
    return callback.keep(model)
