"""What every training loop of ours shares (the training app and the benchmarks): the optimizer
with its learning-rate schedule, and a wall-clock budget. In the library so no app imports another."""

import time

import keras

OPTIMIZERS = ("rmsprop", "adam")  # the paper's, PixelCNN++'s
LR_SCHEDULES = ("constant", "cosine")


def make_optimizer(name, learning_rate, schedule="constant", total_steps=None):
    """A Keras optimizer: "rmsprop" or "adam" at `learning_rate`, constant or decayed by a cosine
    to 0 at `total_steps` (the schedule reads the optimizer's step, which checkpoints keep)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"Expected optimizer to be one of {OPTIMIZERS}. Received optimizer={name!r}.")
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"Expected lr_schedule to be one of {LR_SCHEDULES}. Received lr_schedule={schedule!r}.")
    if schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total_steps)
    return {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam}[name](learning_rate)


class TimeBudget(keras.callbacks.Callback):
    """Stop training (after the current step, then validate and save) once `minutes` have passed
    since the callback was made, across however many `fit` calls use it."""

    def __init__(self, minutes):
        super().__init__()
        self.seconds = minutes * 60.0
        self.exhausted = False
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.seconds > 0 and time.perf_counter() - self._start > self.seconds:
            self.exhausted = True
            self.model.stop_training = True
