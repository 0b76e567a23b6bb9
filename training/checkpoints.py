"""Run checkpoints: the latest training state known to be good (for resume) and the best model."""

import math
import os
import pathlib

import keras
import numpy as np
import tensorflow as tf

from pixel_keras.cli import RunError


class RunCheckpoints:
    """`checkpoints/` holds the latest training states (model, optimizer with its step count, best
    validation figure) as TensorFlow checkpoints; `best.keras` is the model with the lowest
    validation bits/dim, ready for `keras.models.load_model`. Under another Keras backend (JAX),
    whose variables are not TensorFlow trackables, the checkpoint holds `tf.Variable` copies of
    them, written at each save and read back at restore: the same files, manager and checks.

    Args:
        model: the compiled model (its optimizer is checkpointed with it).
        run_dir: the run directory.
    """

    def __init__(self, model, run_dir):
        self.model = model
        self.directory = pathlib.Path(run_dir) / "checkpoints"
        self.best_path = pathlib.Path(run_dir) / "best.keras"
        self.best_validation = tf.Variable(math.inf, trainable=False, dtype=tf.float64, name="best_validation")
        model.optimizer.build(model.trainable_variables)
        self._variables = list(model.variables) + list(model.optimizer.variables) + [self.best_validation]
        self._copies = None  # TensorFlow backend: the checkpoint tracks the model itself
        if keras.backend.backend() == "tensorflow":
            self.checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer,
                                                  best_validation=self.best_validation)
        else:
            self._copies = [tf.Variable(value, trainable=False) for value in self.state()]
            self.checkpoint = tf.train.Checkpoint(variables=self._copies)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory), max_to_keep=2)

    @property
    def step(self):
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    @property
    def saved_step(self):
        """Step of the latest checkpoint on disk (None when there is none)."""
        latest = self.manager.latest_checkpoint
        return None if latest is None else int(latest.rpartition("-")[2])

    def restore(self):
        """Restore the latest state; returns the step it was saved at (0 for a new run).

        Raises:
            RunError: when the run directory has checkpoint records whose files are missing or
                unreadable (never a silent restart from step 0).
        """
        latest = self.manager.latest_checkpoint
        if latest is None and not (self.directory / "checkpoint").exists():
            return 0
        if latest is None or not pathlib.Path(latest + ".index").exists():
            raise RunError(
                f"{self.directory} lists checkpoint {latest} but its files are missing; "
                "restore them or start over with a new --run-dir."
            )
        try:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        except Exception as error:  # the reader raises OpError, IndexError, AssertionError, ...
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise RunError(
                f"checkpoint {latest} cannot be read ({first_line}); "
                "restore it or start over with a new --run-dir."
            ) from None
        if self._copies is not None:
            self._assign([copy.numpy() for copy in self._copies])
        return self.step

    def state(self):
        """An in-memory copy of everything a checkpoint holds, for `save(state)` later."""
        return [keras.ops.convert_to_numpy(variable) for variable in self._variables]

    def _assign(self, state):
        for variable, value in zip(self._variables, state):
            variable.assign(value)

    def save(self, state=None):
        """Write the current state, or an earlier one from `state()` (the current one is put back)."""
        if self._copies is not None:
            for copy, value in zip(self._copies, self.state() if state is None else state):
                copy.assign(value)
            self.manager.save(checkpoint_number=self.step)
            return
        if state is None:
            self.manager.save(checkpoint_number=self.step)
            return
        current = self.state()
        self._assign(state)
        try:
            self.manager.save(checkpoint_number=self.step)
        finally:
            self._assign(current)

    def save_if_best(self, validation):
        """Rewrite `best.keras` when `validation` is the lowest so far: written under a temporary
        name in the same folder, then renamed, so a crash never leaves a partial best.keras."""
        if validation < float(self.best_validation.numpy()):
            partial = self.best_path.with_name(f".{self.best_path.stem}.partial.keras")
            try:
                self.model.save(partial)
                os.replace(partial, self.best_path)
            finally:
                partial.unlink(missing_ok=True)
            self.best_validation.assign(validation)


class SaveCheckpoints(keras.callbacks.Callback):
    """Save only states known to give a finite loss, so that the state kept after a divergence is
    one a resume can train from.

    Keras reports a step's loss before applying its update: the state after step k is known good
    once step k + 1 reports a finite loss, or a validation of it is finite. So every `every_steps`
    steps the state is copied in memory and written when the next step's loss is finite; at an
    epoch end with a finite validation loss the current state is written at once, with
    `best.keras` when the validation loss is the lowest so far.
    """

    def __init__(self, checkpoints, every_steps):
        super().__init__()
        self.checkpoints = checkpoints
        self.every_steps = every_steps
        self.candidate = None

    def on_train_begin(self, logs=None):
        self.step = self.checkpoints.step

    def on_train_batch_end(self, batch, logs=None):
        # The step is counted, not read: under JAX, Keras detaches the variables during an epoch and
        # reading them needs a state sync, done here only when a state is copied or written.
        self.step += 1
        if not np.isfinite((logs or {}).get("loss", math.nan)):  # the epoch's running mean: all steps
            self.candidate = None
            return
        if self.candidate is None and self.step % self.every_steps:
            return
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        if self.candidate is not None:
            self.checkpoints.save(self.candidate)
            self.candidate = None
        if self.checkpoints.step % self.every_steps == 0:
            self.candidate = self.checkpoints.state()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if np.isfinite(logs.get("loss", math.nan)) and np.isfinite(logs.get("val_loss", math.nan)):
            self.candidate = None
            self.checkpoints.save_if_best(logs["val_loss"])
            self.checkpoints.save()
