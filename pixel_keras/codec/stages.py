"""The coding distributions: the one compiled step that computes them, the same for encoder and
decoder, walked over a coding batch of images of any size. The coder (`coder`) range-codes what
this module computes.

The decoder must see bit-identical coding distributions, so both sides compute them with one
compiled step per stage (`Stage.advance`: the incremental model in keras.ops on the CPU, compiled
by `backend.model_function`: a tf.function with XLA off on TensorFlow, jax.jit on JAX), fed
identical inputs (the previous pixel, and the current pixel with its values from the current
sub-pixel on zeroed: two pixels, so a step's work does not grow with the image), and quantise them
the same way (`format.frequencies`). The encoder runs the step over the true images (teacher
forcing); the decoder calls it, decodes one value per image, writes it, and calls it again.

Batching. The step always runs at one fixed shape, `CODING_BATCH` images (a constant of the format;
the last batch is padded with zero images), and each image still gets its own coder and its own
self-contained blob. An image's floats do not depend on the other images of its batch nor on its
slot: every op of the step is row-wise in the batch (matmuls (B, k) x (k, n) and 1 x 1 / k x k
patches as matmuls, elementwise gates, a softmax along the levels of each row; no reduction across
the batch), and at a fixed shape the backend picks the same kernels, whose per-row result is a sum
over k in an order that does not depend on the other rows' values. The slot could still matter in
principle (a GEMM's last, partial row-block may run another micro-kernel); on the CPUs seen here
it does not: `tests/test_codec.py` compares every arch and a multi-scale model bit for bit with
other fillers and shuffled slots, and would catch a CPU where it does. So blobs coded 16 at a time
decode alone, in any grouping and any order. (Were slots to matter, the fix is a slot number in the
header, 4 bits, and decoding each blob in its slot.) What would break it: an op that mixes rows (a
batch-wide max or mean, batch norm with batch statistics), another coding batch shape (other
kernels or blockings), XLA on or off (other fusions and summation orders), another backend, a GPU,
another CPU (AVX2 / AVX-512 / AMX kernels and FMA use differ), another TensorFlow / JAX / oneDNN
version or `TF_ENABLE_ONEDNN_OPTS`, a mixed-precision policy. So: decode on the machine and software
the encoder used. A drift is not silent: the fingerprint covers the backend (a blob of another
backend is refused by name), and the checks of every decoded image refuse the rest: its CRC-32,
and its payload, which must be exactly what re-encoding the decoded image gives (no byte more or
less: trailing garbage is refused).

Any size. Every architecture is convolutional or scans rows, and each rule of the incremental step
is sized by the image it walks, so one trained model codes images of any height and width (a
multi-scale model's: multiples of its factor) with its channels and levels: `CodingModel.stages_at`
builds the walk for each size met (one trace per size), and the probabilities are those of the
same weights built at that size (`tests/test_codec.py` compares them for every arch). A blob
records its image's size.

A multi-scale model (`pixel_keras.multiscale`) codes the small image `image[::f, ::f]` with its
small stage, then the rest of the large image with the conditional stage given it (the small pixels
known, stepped over but not coded again): one coder stream per image, the same header.

Backends: TensorFlow, JAX and PyTorch (eager, where the model's weights are: keep them on the
CPU for the codec). Blobs are backend-bound like they are machine-bound (above).
"""

import time

import numpy as np

from pixel_keras.codec.format import CODING_BATCH

# Where the step runs (`keras.device`): the CPU on every backend, so a GPU's kernel choices (cuDNN's
# autotuning, atomics) cannot make encoder and decoder disagree.
CODING_DEVICE = "cpu:0"
# A progress bar (`Progress`) shows once coding has taken this long.
PROGRESS_AFTER_SECONDS = 3.0


class Progress:
    """Counts coding steps (one step call each) and reports them (`ProgressReport`: a bar on a
    terminal, plain lines in a log) once the work has taken PROGRESS_AFTER_SECONDS: short runs stay
    quiet."""

    def __init__(self, total):
        self.total, self.done, self.started, self.report = int(total), 0, time.monotonic(), None

    def advance(self, steps=1):
        self.done += steps
        if self.done % 64 and self.done < self.total:  # look at the clock every 64 steps only
            return
        if self.report is None:
            if time.monotonic() - self.started < PROGRESS_AFTER_SECONDS:
                return
            from pixel_keras.progress import ProgressReport

            self.report = ProgressReport(self.total, "step")
        self.report.update(self.done)


class Stage:
    """One incremental walk of a `Codec` at one image size: the model's own, or one phase of a
    multi-scale model (the small image, then the large image with the small pixels known).
    `coded`: which sub-pixels of the stage's image (flat, raster order) this stage codes; the
    others are known (stepped over)."""

    def __init__(self, model, incremental, image_shape, num_levels, coded, map_network=None):
        from pixel_keras.backend import model_function

        self.incremental, self.image_shape, self.coded = incremental, tuple(image_shape), coded
        self.num_levels, self.map_network = num_levels, map_network
        self.size = int(np.prod(image_shape))
        self.advance_traces = 0  # times `_advance` ran in Python: once on compiling backends (tests check)
        # One compiled function per stage and step, at CODING_BATCH, on the CPU (TensorFlow: XLA
        # off): the only code that computes coding distributions, called by encoder and decoder alike.
        self.start = model_function(model, self._start, jit_compile=False)
        self.advance = model_function(model, self._advance, jit_compile=False)

    def _start(self, labels, small):
        """(states, image-independent values, context) for a coding batch. The context: labels, and
        for the conditional phase of a multi-scale model its conditioning map from the (known)
        small images."""
        import keras

        with keras.device(CODING_DEVICE):
            context = {"labels": labels}
            if self.map_network is not None:
                context["conditioning_map"] = self.map_network(small)
            states, fixed = self.incremental.start(CODING_BATCH, context=context)
            return states, fixed, context

    def _advance(self, states, fixed, context, previous, current, index):
        """(states, probabilities (CODING_BATCH, levels) float32) of sub-pixel `index` (raster
        order, channels inside a pixel) of each image: commits the `previous` pixel (and ends its
        row) first when `index` opens a new pixel. `current` (CODING_BATCH, 1, 1, C): the pixel of
        `index` with its values from `index` on zeroed, so the encoder (true images) and the
        decoder (partly decoded images) feed identical inputs; `previous`: the whole pixel before
        it. Two pixels, not the image: a step's work does not grow with the image. keras.ops only:
        the same step on every backend."""
        import keras
        from keras import ops

        from pixel_keras.losses import probabilities_from_logits

        self.advance_traces += 1
        _, width, channels = self.image_shape
        with keras.device(CODING_DEVICE):
            self.incremental.start(CODING_BATCH, context=context)  # the rules read their weights in this graph
            position, channel = index // channels, index % channels
            row, col = position // width, position % width

            def commit_previous():
                before_row, before_col = (position - 1) // width, (position - 1) % width
                committed = self.incremental.commit(states, fixed, previous, before_row, before_col)
                return ops.cond(before_col == width - 1,
                                lambda: self.incremental.end_row(committed, fixed, before_row), lambda: committed)

            states = ops.cond(ops.logical_and(channel == 0, position > 0), commit_previous, lambda: list(states))
            states, output = self.incremental.step(states, fixed, current, row, col)
            logits = ops.cast(ops.take(output[:, 0, 0], channel, axis=1), "float32")
            return states, probabilities_from_logits(logits, self.num_levels == 2)

    def walk(self, images, labels, small, on_step, progress=None):
        """Run the step over every sub-pixel of a coding batch `images` (CODING_BATCH, H, W, C)
        int32 (C order), calling `on_step(probabilities (CODING_BATCH, levels) float32)` at each
        coded sub-pixel in order; where it returns {slot: value} (the decoder), the values are
        written into `images` as it goes."""
        import keras
        from keras import ops

        _, width, channels = self.image_shape
        flat = images.reshape(CODING_BATCH, -1)  # a view: decoded values land in `images`
        with keras.device(CODING_DEVICE):  # JAX: places the (uncommitted) weights' computation on the CPU
            tensor = ops.convert_to_tensor
            states, fixed, context = self.start(None if labels is None else tensor(labels),
                                                None if small is None else tensor(small))
            previous = tensor(np.zeros((CODING_BATCH, 1, 1, channels), np.int32))
            for index in range(self.size):
                position, channel = divmod(index, channels)
                if channel == 0 and position > 0:
                    row, col = divmod(position - 1, width)
                    previous = tensor(images[:, row:row + 1, col:col + 1])
                row, col = divmod(position, width)
                current = images[:, row:row + 1, col:col + 1].copy()
                current[..., channel:] = 0
                states, probabilities = self.advance(states, fixed, context, previous, tensor(current),
                                                     tensor(np.int32(index)))
                if progress is not None:
                    progress.advance()
                if not self.coded[index]:
                    continue
                for slot, value in (on_step(ops.convert_to_numpy(probabilities)) or {}).items():
                    flat[slot, index] = value


class CodingModel:
    """A model's coding distributions at any image size (a multi-scale model's: multiples of its
    factor): its stages per size (each stage's step traced once per image size), the checks of
    images and labels, and the walk of a coding batch. `Codec` range-codes what it walks.

    Args:
        model: a model from `build_model` or `build_multiscale_model` (or loaded with
            `pixel_keras.io.load_model_file`).

    Raises:
        ValueError: for a model with a layer the incremental step has no rule for.
    """

    def __init__(self, model):
        from pixel_keras.inspection import model_spec, num_classes_of
        from pixel_keras.multiscale import multiscale_factor

        self.model = model
        self.image_shape, self.num_levels = model_spec(model)
        self.num_classes = num_classes_of(model)
        self.factor = multiscale_factor(model)
        self._stages = {}
        try:
            self.stages = self.stages_at(*self.image_shape[:2])
        except NotImplementedError as error:
            raise ValueError(
                f"The codec needs a model that runs one sub-pixel at a time (pixel_keras.incremental); "
                f"this one does not: {str(error).split(';')[0]}."
            ) from None

    def stages_at(self, height, width):
        """[Stage] at height x width: the model's walk, or for a multi-scale model the small
        image's (every value coded) then the large image's given it (the small positions known,
        not coded again). Every rule of the incremental model is sized by the image it walks, so
        the trained weights code any size (tests compare with a model built at that size)."""
        if (height, width) in self._stages:
            return self._stages[height, width]
        from pixel_keras.incremental import IncrementalModel
        from pixel_keras.multiscale import stage_plan

        walks = [Stage(self.model, IncrementalModel(stage.model, stage.image_shape), stage.image_shape,
                       self.num_levels, stage.drawn, stage.map_network)
                 for stage in stage_plan(self.model, (height, width, self.image_shape[2]))]
        self._stages[height, width] = walks
        return walks

    def steps(self, height, width):
        """Step calls that code one coding batch of height x width images (every stage's sub-pixels)."""
        channels = self.image_shape[2]
        small = 0 if self.factor is None else (height // self.factor) * (width // self.factor) * channels
        return height * width * channels + small

    def check_size(self, height, width, max_pixels=None):
        """Refuse (ValueError, saying why) a height x width image that this codec does not code: an
        empty one, a multi-scale model's whose sides are not multiples of its factor, or one of
        more than `max_pixels` pixels (None: no bound). Cheap: callers check a file's header first."""
        if height < 1 or width < 1:
            raise ValueError(f"is {height} x {width}: an image needs at least one pixel")
        if max_pixels is not None and height * width > max_pixels:
            raise ValueError(f"is {height} x {width} = {height * width} pixels, over the limit of {max_pixels} "
                             "pixels (--max-pixels / max_pixels)")
        if self.factor is not None and (height % self.factor or width % self.factor):
            raise ValueError(f"is {height} x {width}; this multi-scale model codes images whose height and width "
                             f"are multiples of its factor {self.factor}")

    def _check_images(self, images):
        """`images` (N, H, W, C) as int32 after checking them: any H x W that `check_size` takes,
        the model's channels and levels."""
        from pixel_keras.likelihood import check_images

        array = np.asarray(images)
        channels = self.image_shape[2]
        if array.ndim != 4 or array.shape[-1] != channels:
            raise ValueError(f"Expected images of shape (batch, height, width, {channels}). Received shape "
                             f"{array.shape}.")
        try:
            self.check_size(*array.shape[1:3])
        except ValueError as error:
            raise ValueError(f"The images' size {error}.") from None
        return check_images(array, array.shape[1:], self.num_levels)

    def _check_labels(self, labels, count):
        from pixel_keras.likelihood import check_labels

        return check_labels(labels, self.num_classes, count)

    def _batches(self, count, labels):
        """(slice, labels (CODING_BATCH,) int32 or None) of each coding batch of `count` images:
        labels padded with class 0 for the filler slots."""
        for start in range(0, count, CODING_BATCH):
            part = slice(start, min(start + CODING_BATCH, count))
            batch_labels = None
            if labels is not None:
                padded = np.zeros(CODING_BATCH, np.int32)
                padded[:part.stop - start] = labels[part]
                batch_labels = padded
            yield part, batch_labels

    def _walk(self, images, labels, on_step, progress=None):
        """Every stage over a coding batch `images` (CODING_BATCH, H, W, C) int32, C order,
        `on_step` called at each coded sub-pixel in coding order (see `Stage.walk`); decoded
        values are written into `images`."""
        stages = self.stages_at(*images.shape[1:3])
        if self.factor is None:
            stages[0].walk(images, labels, None, on_step, progress)
            return
        f = self.factor
        small_stage, conditional = stages
        small = np.ascontiguousarray(images[:, ::f, ::f])
        small_stage.walk(small, labels, None, on_step, progress)
        images[:, ::f, ::f] = small
        conditional.walk(images, labels, small, on_step, progress)

    def coding_symbols(self, images):
        """The values of `images` (N, H, W, C) in coding order (N, coded): a multi-scale model's
        small image first, then the rest of the large image."""
        images = np.asarray(images, np.int32)
        if self.factor is None:
            return images.reshape(len(images), -1)
        small = images[:, ::self.factor, ::self.factor].reshape(len(images), -1)
        conditional = self.stages_at(*images.shape[1:3])[1]
        return np.concatenate([small, images.reshape(len(images), -1)[:, conditional.coded]], axis=1)

    def coding_probabilities(self, images, labels=None):
        """The float32 probabilities (CODING_BATCH, coded, levels) that code each image of one
        coding batch `images` (exactly CODING_BATCH images), in coding order: the floats that
        encoder and decoder must agree on bit for bit (tests compare them across batches)."""
        images = self._check_images(images).copy()
        if len(images) != CODING_BATCH:
            raise ValueError(f"Expected a coding batch of {CODING_BATCH} images. Received {len(images)}.")
        labels = self._check_labels(labels, CODING_BATCH)
        (_, batch_labels), = self._batches(CODING_BATCH, labels)
        rows = []
        self._walk(images, batch_labels, rows.append)
        return np.stack(rows, axis=1)

    def _progress(self, progress, count, size):
        """A `Progress` for `count` images of `size` where `progress` is True, else it as given."""
        if progress is True:
            return Progress(-(-count // CODING_BATCH) * self.steps(*size))
        return progress or None
