"""Run checkpoints: the latest training state known to be good (for resume) and the best model.

One format on every Keras backend, needing numpy only (no TensorFlow): `checkpoints/state-STEP.npz`
holds the model's and the optimizer's variables (the optimizer's step count and learning rate, so
the schedule's progress, among them), and `checkpoints/latest.json` names the latest such file with
its step and the best validation figure so far. Each file is written under a temporary name and
renamed (`os.replace`), the state before `latest.json`, so a run killed at any moment leaves a
`latest.json` naming a whole state. Run directories of older versions hold TensorFlow checkpoints
(`checkpoints/checkpoint`, `ckpt-STEP.*`): they are read where TensorFlow is installed, and the
next save writes the new format.
"""

import json
import math
import os
import pathlib
import re

import keras
import numpy as np

from pixel_keras.cli import RunError

LATEST = "latest.json"
KEEP = 2  # states kept on disk: the latest and the one before it
LEGACY_INDEX = "checkpoint"  # tf.train.CheckpointManager's record of an older version's checkpoints


def _replace_atomically(path, write):
    """Call `write(file)` on a temporary file beside `path`, then rename it to `path`."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _cannot_read(path, error):
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return RunError(f"checkpoint {path} cannot be read ({first_line}); restore it or start over with a new --run-dir.")


class RunCheckpoints:
    """`checkpoints/` holds the latest training states (model, optimizer with its step count, best
    validation figure) for resuming; `best.keras` is the model with the lowest validation bits/dim,
    ready for `keras.models.load_model`.

    Args:
        model: the compiled model (its optimizer is checkpointed with it).
        run_dir: the run directory.
    """

    def __init__(self, model, run_dir):
        self.model = model
        self.directory = pathlib.Path(run_dir) / "checkpoints"
        self.best_path = pathlib.Path(run_dir) / "best.keras"
        self.best_validation = math.inf
        model.optimizer.build(model.trainable_variables)
        self._variables = list(model.variables) + list(model.optimizer.variables)
        # by identity: `==` on variables is elementwise
        self._step_index = next(index for index, variable in enumerate(self._variables)
                                if variable is model.optimizer.iterations)

    def _keys(self, paths):
        """Names of the variables listed by `paths` (the model's, then the optimizer's) that do not
        depend on the process: an optimizer's path starts with its name, "adam" or "adam_1"."""
        count = len(self.model.variables)
        return paths[:count] + [f"optimizer/{path.partition('/')[2]}" for path in paths[count:]]

    @property
    def step(self):
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def _latest(self):
        """latest.json's record, or None where there is none."""
        path = self.directory / LATEST
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text())
            return {"step": int(record["step"]), "file": str(record["file"]),
                    "best_validation": float(record["best_validation"])}
        except (ValueError, KeyError, TypeError) as error:
            raise _cannot_read(path, error) from None

    def _legacy_step(self):
        """Step of an older version's latest TensorFlow checkpoint (None when there is none)."""
        index = self.directory / LEGACY_INDEX
        found = re.search(r'^model_checkpoint_path: "(?:.*[/\\])?ckpt-(\d+)"', index.read_text(), re.MULTILINE) \
            if index.exists() else None
        return int(found[1]) if found else None

    @property
    def saved_step(self):
        """Step of the latest checkpoint on disk (None when there is none)."""
        latest = self._latest()
        return latest["step"] if latest else self._legacy_step()

    def restore(self):
        """Restore the latest state; returns the step it was saved at (0 for a new run).

        Raises:
            RunError: when the run directory has checkpoint records whose files are missing or
                unreadable (never a silent restart from step 0).
        """
        latest = self._latest()
        if latest is None:
            return self._restore_legacy() if (self.directory / LEGACY_INDEX).exists() else 0
        path = self.directory / latest["file"]
        if not path.exists():
            raise RunError(f"{self.directory} lists checkpoint {path.name} but its files are missing; "
                           "restore them or start over with a new --run-dir.")
        try:
            with np.load(path, allow_pickle=False) as saved:
                values = [saved[f"v{index}"] for index in range(len(saved.files) - 1)]
                values = _in_variable_order(values, self._keys([str(path) for path in saved["paths"]]),
                                            self._keys([variable.path for variable in self._variables]))
        except Exception as error:  # zipfile, numpy and OS errors of a damaged file
            raise _cannot_read(path, error) from None
        shapes = [tuple(variable.shape) for variable in self._variables]
        if [value.shape for value in values] != shapes:
            raise _cannot_read(path, ValueError(
                f"it holds {len(values)} variables that do not fit this model's and optimizer's {len(shapes)}"))
        self._assign(values)
        self.best_validation = latest["best_validation"]
        return self.step

    def _restore_legacy(self):
        """Read an older version's TensorFlow checkpoint (the model and optimizer as trackables under
        TensorFlow; `tf.Variable` copies of their variables under other backends)."""
        try:
            import tensorflow as tf
        except ImportError:
            raise RunError(f"{self.directory} holds TensorFlow checkpoints (of pixel_keras before its own "
                           "format) and TensorFlow is not installed: resume this run where it is (its next "
                           "checkpoint is in the new format), or start a new --run-dir") from None
        latest = tf.train.latest_checkpoint(str(self.directory))
        if latest is None or not pathlib.Path(latest + ".index").exists():
            raise RunError(f"{self.directory} lists checkpoint {latest} but its files are missing; "
                           "restore them or start over with a new --run-dir.")
        best = tf.Variable(math.inf, trainable=False, dtype=tf.float64, name="best_validation")
        copies = None
        if keras.backend.backend() == "tensorflow":
            checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.model.optimizer, best_validation=best)
        else:
            copies = [tf.Variable(value, trainable=False) for value in self.state()[:-1]] + [best]
            checkpoint = tf.train.Checkpoint(variables=copies)
        try:
            checkpoint.restore(latest).assert_existing_objects_matched()
        except Exception as error:  # the reader raises OpError, IndexError, AssertionError, ...
            raise _cannot_read(latest, error) from None
        if copies is not None:
            self._assign([copy.numpy() for copy in copies[:-1]])
        self.best_validation = float(best.numpy())
        return self.step

    def start_from(self, source, with_optimizer, name):
        """A new run from `source`, a loaded model of the same graph (`name`: where it came from, for
        errors): its weights, and with `with_optimizer` also its optimizer's state with the step
        count, so the run continues where `source` was saved (a run's best.keras, a shipped model:
        the data order resumes from that step). Returns the step.

        Raises:
            RunError: when `source` holds no optimizer state of this run's optimizer, or its
                variables do not fit this model's (naming the first that differs).
        """
        targets, values = list(self.model.variables), list(source.variables)
        count = len(targets)
        if with_optimizer:
            optimizer = getattr(source, "optimizer", None)
            if optimizer is None or not optimizer.variables:
                raise RunError(f"--initial-model {name} holds no optimizer state (it was saved without "
                               "compiling); start from its weights only (leave out --initial-optimizer-state)")
            ours = type(self.model.optimizer).__name__
            if type(optimizer).__name__ != ours:
                raise RunError(f"--initial-model {name} was trained with {type(optimizer).__name__}, this run "
                               f"with {ours}: use its --optimizer, or leave out --initial-optimizer-state")
            targets += list(self.model.optimizer.variables)
            values += list(optimizer.variables)

        def keys(variables):  # the optimizer's paths after its name ("rm_sprop" or "rm_sprop_1")
            return [variable.path if index < count else f"optimizer/{variable.path.partition('/')[2]}"
                    for index, variable in enumerate(variables)]

        target_keys, source_keys = keys(targets), keys(values)
        values = _in_variable_order([keras.ops.convert_to_numpy(value) for value in values], source_keys, target_keys)
        for index, target in enumerate(targets):
            value = values[index] if index < len(values) else None
            if value is None or tuple(value.shape) != tuple(target.shape):
                found = "nothing" if value is None else f"{source_keys[index]} of shape {tuple(value.shape)}"
                raise RunError(f"--initial-model {name} does not fit this run's model: its variable {target.path} "
                               f"of shape {tuple(target.shape)} meets {found}; it must be the same arch, "
                               "--layers, --hidden, levels, head and conditioning")
        if len(values) != len(targets):
            raise RunError(f"--initial-model {name} does not fit this run's model: it holds {len(values)} "
                           f"variables where this run has {len(targets)}")
        for target, value in zip(targets, values):
            target.assign(value)
        return self.step if with_optimizer else 0

    def state(self):
        """An in-memory copy of everything a checkpoint holds, for `save(state)` later: the
        variables' values, then the best validation figure."""
        return [keras.ops.convert_to_numpy(variable) for variable in self._variables] + [self.best_validation]

    def _assign(self, values):
        for variable, value in zip(self._variables, values):
            variable.assign(value)

    def save(self, state=None):
        """Write the current state, or an earlier one from `state()`."""
        *values, best_validation = self.state() if state is None else state
        step = int(values[self._step_index])
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"state-{step}.npz"
        arrays = {f"v{index}": value for index, value in enumerate(values)}
        arrays["paths"] = np.array([variable.path for variable in self._variables])  # for people reading it
        _replace_atomically(self.directory / name, lambda file: np.savez(file, **arrays))
        previous = self._latest()
        record = {"step": step, "file": name, "best_validation": best_validation, "format": 1}
        _replace_atomically(self.directory / LATEST, lambda file: file.write(json.dumps(record).encode() + b"\n"))
        kept = {name} | ({previous["file"]} if previous else set())
        for path in self.directory.glob("state-*.npz"):
            if path.name not in kept:
                path.unlink(missing_ok=True)

    def save_if_best(self, validation):
        """Rewrite `best.keras` when `validation` is the lowest so far: written under a temporary
        name in the same folder, then renamed, so a crash never leaves a partial best.keras."""
        if validation < self.best_validation:
            partial = self.best_path.with_name(f".{self.best_path.stem}.partial.keras")
            try:
                self.model.save(partial)
                os.replace(partial, self.best_path)
            finally:
                partial.unlink(missing_ok=True)
            self.best_validation = float(validation)


def _in_variable_order(values, saved_paths, paths):
    """The saved values in the order of this model's and optimizer's variables (`paths`, their
    `RunCheckpoints._keys`) when the file names the same variables, each once, so a graph whose
    variable order changed between versions (a conditional PixelCNN's conditioning moved into its
    convolution) resumes. Otherwise as saved (the shape check then decides)."""
    if len(set(paths)) != len(paths) or sorted(saved_paths) != sorted(paths):
        return values
    by_path = dict(zip(saved_paths, values))
    return [by_path[path] for path in paths]


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
