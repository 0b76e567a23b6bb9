"""Run checkpoints: the latest training state (for resume) and the best model (for use)."""

import math
import pathlib

import keras
import numpy as np
import tensorflow as tf

from training.cli import RunError


class RunCheckpoints:
    """`checkpoints/` holds the latest training states (model, optimizer with its step count, best
    validation figure) as TensorFlow checkpoints; `best.keras` is the model with the lowest
    validation bits/dim, ready for `keras.models.load_model`.

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
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer,
                                              best_validation=self.best_validation)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory), max_to_keep=2)

    @property
    def step(self):
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

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
        return self.step

    def save(self):
        self.manager.save(checkpoint_number=self.step)

    def save_if_best(self, validation):
        if validation < float(self.best_validation.numpy()):
            self.best_validation.assign(validation)
            self.model.save(self.best_path)


class SaveCheckpoints(keras.callbacks.Callback):
    """Save the latest state every `every_steps` steps and at each epoch end, the best model after
    each validation; nothing is saved once the loss is not finite, so the last good state stays."""

    def __init__(self, checkpoints, every_steps):
        super().__init__()
        self.checkpoints = checkpoints
        self.every_steps = every_steps

    def on_train_batch_end(self, batch, logs=None):
        if self.checkpoints.step % self.every_steps == 0 and np.isfinite((logs or {}).get("loss", 0.0)):
            self.checkpoints.save()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not np.isfinite(logs.get("loss", 0.0)):
            return
        if np.isfinite(logs.get("val_loss", math.inf)):
            self.checkpoints.save_if_best(logs["val_loss"])
        self.checkpoints.save()
