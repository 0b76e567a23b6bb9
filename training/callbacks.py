"""Training callbacks: throughput and one-line epoch summaries, a time budget, sample galleries,
TensorBoard summaries on the optimizer-step axis, and the same figures as JSON lines (no TensorFlow)."""

import json
import math
import pathlib
import time

import keras
import numpy as np

from pixel_keras.backend import seed_argument
from pixel_keras.fitting import ModelKeeper
from pixel_keras.gallery import image_grid, scale_up, write_png
from pixel_keras.multiscale import multiscale_factor
from pixel_keras.sampling import Sampler


class EpochSummary(keras.callbacks.Callback):
    """Adds `images_per_second` (training only), `learning_rate`, and the loss (bits/dim) restated
    as `bits_per_dim` and `nats_per_image` (for training and validation) to the epoch logs, so that
    the TensorBoard callback after it records them; prints one line per epoch. Deriving the units
    from the loss costs nothing, where metrics would recompute the softmax over all levels."""

    def __init__(self, global_batch, image_shape, print_fn=print):
        super().__init__()
        self.global_batch = global_batch
        self.nats_per_bit_dim = float(np.prod(image_shape)) * math.log(2.0)
        self.print_fn = print_fn

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._train_end, self._steps = time.perf_counter(), None, 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def on_test_begin(self, logs=None):
        if self._train_end is None:
            self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        train_seconds = (self._train_end or time.perf_counter()) - self._start
        logs["images_per_second"] = self._steps * self.global_batch / max(train_seconds, 1e-9)
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        for prefix in ("", "val_"):
            if f"{prefix}loss" in logs:
                logs[f"{prefix}bits_per_dim"] = logs[f"{prefix}loss"]
                logs[f"{prefix}nats_per_image"] = logs[f"{prefix}loss"] * self.nats_per_bit_dim
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        validation = f", validation {logs['val_loss']:.4f}" if "val_loss" in logs else ""
        self.print_fn(
            f"epoch {epoch + 1} (step {step}): train {logs['loss']:.4f} bits/dim{validation}, "
            f"{logs['images_per_second']:.1f} images/s, {time.perf_counter() - self._start:.0f} s"
        )


class Forecast(keras.callbacks.Callback):
    """Prints, once, early in a run: the measured step rate, the step the run will end at and when.

    A run's figure depends on its steps, not its minutes, and machines differ several-fold: this
    line tells a user at once what their budget buys. The rate is timed over `steps` steps after
    `skip` (tracing, the first checkpoint), `budget` (a `TrainingBudget`) gives the steps and time left.
    """

    def __init__(self, budget, global_batch, skip=5, steps=40, print_fn=print):
        super().__init__()
        self.budget, self.global_batch, self.skip, self.steps, self.print_fn = budget, global_batch, skip, steps, print_fn
        self._seen, self._mark, self.done = 0, None, False

    def on_train_batch_end(self, batch, logs=None):
        if self.done:
            return
        self._seen += 1
        if self._seen == self.skip:
            self._mark = time.perf_counter()
        elif self._mark is not None and self._seen >= self.skip + self.steps:
            self.done = True
            self.print_fn(self.message((self._seen - self.skip) / (time.perf_counter() - self._mark)))

    def message(self, steps_per_second):
        """The forecast line for a measured rate (steps/s of training alone: validation, checkpoints
        and galleries add to the wall clock, so the time-limited step count is an upper bound)."""
        budget, step = self.budget, self.budget.step
        limits = {}  # steps left under each limit
        if budget.total_steps is not None:
            limits["--steps"] = budget.total_steps - step
        seconds_left = budget.seconds_left()
        if seconds_left is not None:
            limits["--max-minutes"] = round(seconds_left * steps_per_second)
        text = f"measured {steps_per_second:.1f} steps/s ({steps_per_second * self.global_batch:.0f} images/s)"
        if not limits:
            return text + "; no step or time limit"
        flag = min(limits, key=limits.get)
        eta = limits[flag] / steps_per_second
        finish = time.strftime("%H:%M", time.localtime(time.time() + eta))
        return (f"{text}: the run should end at about step {step + limits[flag]:,} (set by {flag}), its training "
                f"done in about {eta / 60:.0f} min (~{finish})")


class MetricsLog(keras.callbacks.Callback):
    """Appends one JSON line per epoch to `path` (`metrics.jsonl` of the run directory): the optimizer
    step, the training minutes of the run so far (summed over its invocations), the wall-clock
    time, and the epoch's figures (`EpochSummary`'s among them): the learning curves without
    TensorBoard, on every backend. Lines of steps after `step` (the state a resume starts from:
    a killed run may have logged past its last checkpoint) are dropped when it is made."""

    def __init__(self, path, step):
        super().__init__()
        self.path = pathlib.Path(path)
        records = []
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    records.append(json.loads(line))
                except ValueError:  # a line cut by a kill
                    continue
        records = [record for record in records if record.get("step", math.inf) <= step]
        self.minutes_before = max([record.get("minutes", 0.0) for record in records], default=0.0)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.partial")
        partial.write_text("".join(json.dumps(record) + "\n" for record in records))
        partial.replace(self.path)
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        record = {"step": int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)),
                  "minutes": self.minutes_before + (time.perf_counter() - self._start) / 60.0,
                  "time": time.time(),
                  **{key: float(value) for key, value in (logs or {}).items() if np.ndim(value) == 0}}
        with open(self.path, "a") as file:
            file.write(json.dumps(record) + "\n")


class StepTensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback with the epoch summaries at the optimizer step, the one step
    axis of every summary of a run (galleries included), whatever the epoch length."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)), logs)


def with_small_images(samples, factor, columns):
    """Samples of a multi-scale model, rows of `columns`, each row below a row of its small images
    (`samples[:, ::f, ::f]`, what the small stage drew) scaled up nearest-neighbour to the large size."""
    small = np.repeat(np.repeat(samples[:, ::factor, ::factor], factor, axis=1), factor, axis=2)
    rows = []
    for start in range(0, len(samples), columns):
        rows += [small[start:start + columns], samples[start:start + columns]]
    return np.concatenate(rows)


class Gallery(ModelKeeper):
    """Every `every` epochs: samples, and completions of held-out images whose bottom half was
    hidden, drawn with the shared sampling loop; written to TensorBoard at the optimizer step and
    as PNG files, scaled up (`scale_up`). A class-conditional model's samples are one row per
    class (the first 10 classes), as many per row as held-out images. A multi-scale model's samples
    come in rows of as many, each below its small images (`with_small_images`). `gallery.json`
    beside them records the step they were drawn at, so the gallery of the end of a run is drawn
    once, not again by the final report or a re-run.

    Args:
        held_out: integer images (N, H, W, C) to complete (validation images), N >= 1.
        num_levels: pixel values per channel.
        log_dir: TensorBoard directory; images go to its `gallery` writer (None: PNG files only,
            e.g. where TensorFlow is not installed).
        png_dir: where `samples.png` and `completions.png` (latest) are written.
        every: epochs between galleries (0: only `latest` at the end of a run).
        seed: sampling seed (the step is added).
        held_out_labels: class-conditional models only: the labels of `held_out`.
        num_classes: class-conditional models only: K.
    """

    def __init__(self, held_out, num_levels, log_dir, png_dir, every=1, seed=0, held_out_labels=None,
                 num_classes=None):
        super().__init__()
        self.held_out = np.asarray(held_out, np.int32)
        self.held_out_labels = None if held_out_labels is None else np.asarray(held_out_labels, np.int32)
        self.num_classes = num_classes
        self.num_levels = num_levels
        self.writer = None
        if log_dir is not None:
            import tensorflow as tf  # TensorBoard summaries

            self.writer = tf.summary.create_file_writer(str(pathlib.Path(log_dir) / "gallery"))
        self.png_dir = pathlib.Path(png_dir)
        self.record = self.png_dir / "gallery.json"
        self.every = every
        self.seed = seed
        self.sampler = None

    def draw(self, seed):
        """(samples, completions, originals) as integer images; one loop call for both kinds."""
        if self.sampler is None:
            self.sampler = Sampler(self.model)
        count, height = len(self.held_out), self.held_out.shape[1]
        labels = []
        if self.num_classes is not None:  # one row of `count` samples per class, then the completions
            labels = [np.repeat(np.arange(min(self.num_classes, 10), dtype=np.int32), count), self.held_out_labels]
        num_samples = len(labels[0]) if labels else count
        known = np.zeros((num_samples + count,) + self.held_out.shape[1:], bool)
        known[num_samples:, : height // 2] = True
        start = np.concatenate([np.zeros((num_samples,) + self.held_out.shape[1:], np.int32), self.held_out])
        arguments = [start, known, seed_argument(seed), np.float32(1.0)]  # numpy: any Keras backend
        if labels:
            arguments.append(np.concatenate(labels).astype(np.int32))
        drawn = keras.ops.convert_to_numpy(self.sampler.fill(*arguments))
        return drawn[:num_samples], drawn[num_samples:], self.held_out

    def write(self, step):
        """Draw the gallery of the model at optimizer step `step`; returns the samples PNG path."""
        samples, completions, originals = self.draw(self.seed + step)
        width = self.held_out.shape[2]
        columns = len(originals) if self.num_classes else None
        factor = multiscale_factor(self.model)
        if factor is not None:
            columns = len(originals)
            samples = with_small_images(samples, factor, columns)
        grids = {
            "samples": scale_up(image_grid(samples, self.num_levels, columns=columns), width),
            "completions": scale_up(image_grid(np.concatenate([completions, originals]), self.num_levels,
                                               columns=len(originals)), width),
        }
        self.png_dir.mkdir(parents=True, exist_ok=True)
        for name, grid in grids.items():
            write_png(self.png_dir / f"{name}.png", grid)
        if self.writer is not None:
            import tensorflow as tf

            with self.writer.as_default():
                for name, grid in grids.items():
                    tf.summary.image(name, grid[None], step=step)
            self.writer.flush()
        self.record.write_text(json.dumps({"step": step}) + "\n")
        return self.png_dir / "samples.png"

    def latest(self, step):
        """The samples PNG of step `step`: the one already drawn at that step, else a new one."""
        drawn = json.loads(self.record.read_text()).get("step") if self.record.exists() else None
        if drawn == step and (self.png_dir / "samples.png").exists():
            return self.png_dir / "samples.png"
        return self.write(step)

    def on_epoch_end(self, epoch, logs=None):
        if self.every and (epoch + 1) % self.every == 0 and np.isfinite((logs or {}).get("loss", 0.0)):
            self.write(int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)))
