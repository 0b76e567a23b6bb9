"""Training callbacks: throughput and one-line epoch summaries, a time budget, sample galleries."""

import math
import pathlib
import time

import keras
import numpy as np
import tensorflow as tf

from pixel_keras.gallery import image_grid, write_png
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


class Gallery(keras.callbacks.Callback):
    """Every `every` epochs: samples, and completions of held-out images whose bottom half was
    hidden, drawn with the shared sampling loop; written to TensorBoard and as PNG files.

    Args:
        held_out: integer images (N, H, W, C) to complete (validation images).
        num_levels: pixel values per channel.
        log_dir: TensorBoard directory; images go to its `gallery` writer.
        png_dir: where `samples.png` and `completions.png` (latest) are written.
        every: epochs between galleries (0: never).
        seed: sampling seed (the epoch number is added).
    """

    def __init__(self, held_out, num_levels, log_dir, png_dir, every=1, seed=0):
        super().__init__()
        self.held_out = np.asarray(held_out, np.int32)
        self.num_levels = num_levels
        self.writer = tf.summary.create_file_writer(str(pathlib.Path(log_dir) / "gallery"))
        self.png_dir = pathlib.Path(png_dir)
        self.every = every
        self.seed = seed
        self.sampler = None

    def draw(self, seed):
        """(samples, completions, originals) as integer images; one loop call for both kinds."""
        if self.sampler is None:
            self.sampler = Sampler(self.model)
        count, height = len(self.held_out), self.held_out.shape[1]
        known = np.zeros((2 * count,) + self.held_out.shape[1:], bool)
        known[count:, : height // 2] = True
        start = np.concatenate([np.zeros_like(self.held_out), self.held_out])
        drawn = self.sampler.fill(tf.constant(start), tf.constant(known), tf.constant(seed, tf.int64),
                                  tf.constant(1.0)).numpy()
        return drawn[:count], drawn[count:], self.held_out

    def write(self, step, seed):
        samples, completions, originals = self.draw(seed)
        grids = {
            "samples": image_grid(samples, self.num_levels),
            "completions": image_grid(np.concatenate([completions, originals]), self.num_levels,
                                      columns=len(originals)),
        }
        self.png_dir.mkdir(parents=True, exist_ok=True)
        with self.writer.as_default():
            for name, grid in grids.items():
                tf.summary.image(name, grid[None], step=step)
                write_png(self.png_dir / f"{name}.png", grid)
        self.writer.flush()
        return self.png_dir / "samples.png"

    def on_epoch_end(self, epoch, logs=None):
        if self.every and (epoch + 1) % self.every == 0 and np.isfinite((logs or {}).get("loss", 0.0)):
            self.write(epoch + 1, self.seed + epoch)
