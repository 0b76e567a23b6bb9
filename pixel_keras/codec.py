"""Lossless image compression with a trained model: range coding of each sub-pixel under the model's
conditional (the paper's use of exact likelihoods). An image costs about -log2 p(x) bits plus a few
bytes.

The decoder must see bit-identical coding distributions, so both sides compute them with one
compiled step per stage (`_Stage.advance`: the incremental model in keras.ops on the CPU, compiled
by `backend.model_function`: a tf.function with XLA off on TensorFlow, jax.jit on JAX), fed
identical inputs (the previous pixel, and the current pixel with its values from the current
sub-pixel on zeroed: two pixels, so a step's work does not grow with the image), and quantise them
the same way (`frequencies`). The encoder runs the step over the true images (teacher
forcing); the decoder calls it, decodes one value per image, writes it, and calls it again. The
entropy coder is `constriction`'s range coder (`stream.queue`, 32-bit words, 24-bit probabilities).

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
multi-scale model's: multiples of its factor) with its channels and levels: `Codec.stages_at`
builds the walk for each size met (one trace per size), and the probabilities are those of the
same weights built at that size (`tests/test_codec.py` compares them for every arch). A blob
records its image's size.

A multi-scale model (`pixel_keras.multiscale`) codes the small image `image[::f, ::f]` with its
small stage, then the rest of the large image with the conditional stage given it (the small pixels
known, stepped over but not coded again): one coder stream per image, the same header.

Backends: TensorFlow, JAX and PyTorch (eager, where the model's weights are: keep them on the
CPU for the codec). Blobs are backend-bound like they are machine-bound (above).

Blob format 3 (a header plus the coder's words, big-endian, trailing zero bytes dropped):
    byte 0      format version (`FORMAT_VERSION`)
    bytes 1-4   fingerprint of the model (`model_fingerprint`): decoding with another model raises
    varint      image height (LEB128: 1 byte below 128, 2 below 16384, ...)
    varint      image width
    4 bytes     CRC-32 of the height, width and pixels (`image_checksum`): a decoder that drifted,
                wrong labels or a corrupted blob raise; a wrong image passes with probability 2**-32
So 11 bytes of header for sides below 128. Format 2 (7 bytes: version, fingerprint, 16 bits of the
CRC-32; the model's image size) still decodes, bit for bit (`tests/data`). Channels and levels come
from the model; labels of a conditional model are the caller's.

Command line (`pixel_keras.codec_cli`; one-line errors):
    python -m pixel_keras.codec compress --model RUN_DIR|model.keras IN.png|DIR OUT [--overwrite]
    python -m pixel_keras.codec decompress --model RUN_DIR|model.keras IN|DIR OUT.png|DIR [--overwrite]
"""

import hashlib
import json
import time
import weakref
import zlib

import numpy as np

# 3: the image size in the header and a full CRC-32 (2: CODING_BATCH images per step; 1: batch 1).
FORMAT_VERSION = 3
READABLE_VERSIONS = (2, 3)  # format 2's blobs (the model's image size, a 16-bit check) still decode
# Format 3: version, fingerprint, CRC-32; the height and width (varints) come between fingerprint and CRC.
FIXED_HEADER_BYTES = 9
HEADER_BYTES_V2 = 7
# Integer frequencies of each coding distribution sum to 2**PRECISION_BITS, the range coder's own
# probability precision, with every level at least 1 (so every value stays codable).
PRECISION_BITS = 24
SUFFIX = ".pkc"
# Images coded per step call, fillers (zero images) padding the last batch: a constant of the
# format, since the decoder must run the very step (same shapes) that the encoder ran.
CODING_BATCH = 16
# Where the step runs (`keras.device`): the CPU on every backend, so a GPU's kernel choices (cuDNN's
# autotuning, atomics) cannot make encoder and decoder disagree.
CODING_DEVICE = "cpu:0"
# The command line's default bound on one image (height x width), checked from a file's header.
DEFAULT_MAX_PIXELS = 1_000_000
# Coding steps whose probabilities the encoder collects before range-coding them (memory: 16 MB
# at 256 levels), rather than the table of a whole image.
ENCODE_ROWS = 1024
# A progress bar (`Progress`) shows once coding has taken this long.
PROGRESS_AFTER_SECONDS = 3.0


class CodecError(ValueError):
    """A blob that cannot be decoded with this model: foreign, truncated or corrupted."""


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


def frequencies(probabilities):
    """Integer frequencies (n, levels) float64, each row summing to 2**PRECISION_BITS exactly, every
    entry >= 1, from float32 probabilities (n, levels). A pure function of its input's bits: given
    the same floats, encoder and decoder get the same table."""
    probabilities = np.asarray(probabilities, np.float64)
    levels = probabilities.shape[-1]
    counts = 1 + np.floor(probabilities * float(2**PRECISION_BITS - levels))
    rows = np.arange(len(counts))
    counts[rows, np.argmax(counts, axis=-1)] += 2**PRECISION_BITS - counts.sum(axis=-1)  # exact: integers < 2**53
    return counts


def model_fingerprint(model):
    """4 bytes of SHA-256 over the model's image shape, levels, layer classes and the weights it
    computes with, and the Keras backend: stable through saving and loading a .keras file,
    different for other weights or another backend (whose step rounds differently).

    A `MaskedConv2D` contributes its masked kernel: a .keras file stores that, so the raw
    variable's masked-out entries (which change nothing) differ after loading."""
    import keras
    from keras import ops

    from pixel_keras.layers.masked_conv import MaskedConv2D
    from pixel_keras.inspection import model_spec, nested_layers, num_classes_of

    effective = {}
    for layer in nested_layers(model):
        if isinstance(layer, MaskedConv2D):
            effective[id(super(MaskedConv2D, layer).kernel)] = layer.kernel
    digest = hashlib.sha256()
    if keras.backend.backend() != "tensorflow":  # TensorFlow's blobs keep the fingerprint of format 2
        digest.update(f"backend {keras.backend.backend()}".encode())
    image_shape, levels = model_spec(model)
    spec = [list(image_shape), levels, num_classes_of(model), [type(layer).__name__ for layer in model.layers]]
    digest.update(json.dumps(spec).encode())
    for weight in model.weights:
        value = np.ascontiguousarray(ops.convert_to_numpy(effective.get(id(weight), weight)))
        digest.update(str((value.shape, value.dtype.str)).encode())
        digest.update(value.tobytes())
    return digest.digest()[:4]


def pixel_checksum(image):
    """Format 2's check: 16 bits of the CRC-32 of the pixel values (int32, C order), 2 bytes."""
    return (zlib.crc32(np.ascontiguousarray(image, np.int32).tobytes()) & 0xFFFF).to_bytes(2, "big")


def image_checksum(image):
    """Format 3's check: the CRC-32 (4 bytes) of an image's height and width (4 bytes each,
    big-endian) and its values (int32 little-endian, C order): a wrong decode passes with
    probability 2**-32."""
    height, width = image.shape[:2]
    data = height.to_bytes(4, "big") + width.to_bytes(4, "big") + np.ascontiguousarray(image, "<i4").tobytes()
    return zlib.crc32(data).to_bytes(4, "big")


def pack_size(value):
    """A size as a LEB128 varint: 7 bits a byte, low bits first, the top bit set on all but the last
    (1 byte below 128, 2 below 16384)."""
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def unpack_size(blob, offset):
    """(value, offset after it) of the varint at `offset`; None where the blob ends inside it or it
    is longer than 5 bytes (no size is that large)."""
    value = 0
    for shift in range(0, 35, 7):
        if offset >= len(blob):
            return None
        byte = blob[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
    return None


def pack_words(words):
    """The range coder's 32-bit words as big-endian bytes without trailing zero bytes (the decoder
    reads missing words as zeros, so they carry nothing)."""
    return np.asarray(words, np.uint32).astype(">u4").tobytes().rstrip(b"\0")


def unpack_words(payload):
    """Inverse of `pack_words` up to trailing zero words: uint32 words, the last one zero-filled."""
    payload = bytes(payload) + b"\0" * (-len(payload) % 4)
    return np.frombuffer(payload, ">u4").astype(np.uint32)


class _Header:
    """A parsed blob header: format `version`, model `fingerprint`, image `size` (height, width),
    `checksum` bytes and where the coder's `payload` starts."""

    def __init__(self, version, fingerprint, size, checksum, payload):
        self.version, self.fingerprint, self.size, self.checksum, self.payload = (
            version, fingerprint, size, checksum, payload)


def _read_header(blob, model_size):
    """The `_Header` of `blob`, or a reason (str) why it has none: empty, truncated, unknown version.
    Format 2 has no size: its images have the model's (`model_size`)."""
    if not blob:
        return "is empty"
    version = blob[0]
    if version == 2:
        if len(blob) < HEADER_BYTES_V2:
            return f"is truncated: shorter than format 2's {HEADER_BYTES_V2}-byte header"
        return _Header(2, blob[1:5], tuple(model_size), blob[5:7], HEADER_BYTES_V2)
    if version != FORMAT_VERSION:
        return f"has format version {version}; this codec reads versions {', '.join(map(str, READABLE_VERSIONS))}"
    height = unpack_size(blob, 5)
    width = height and unpack_size(blob, height[1])
    if not width or width[1] + 4 > len(blob):
        return "is truncated: it ends inside its header"
    end = width[1] + 4
    return _Header(FORMAT_VERSION, blob[1:5], (height[0], width[0]), blob[width[1]:end], end)


class _Stage:
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

        from pixel_keras.likelihood import probabilities_from_logits

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


class Codec:
    """Compresses and decompresses images of any height and width (a multi-scale model's: multiples
    of its factor) for one model, CODING_BATCH images per step call (each stage's step traced once
    per image size).

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
        self.fingerprint = model_fingerprint(model)

    def stages_at(self, height, width):
        """[_Stage] at height x width: the model's walk, or for a multi-scale model the small
        image's (every value coded) then the large image's given it (the small positions known,
        not coded again). Every rule of the incremental model is sized by the image it walks, so
        the trained weights code any size (tests compare with a model built at that size)."""
        if (height, width) in self._stages:
            return self._stages[height, width]
        from pixel_keras.incremental import IncrementalModel
        from pixel_keras.multiscale import stage_plan

        walks = [_Stage(self.model, IncrementalModel(stage.model, stage.image_shape), stage.image_shape,
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
        `on_step` called at each coded sub-pixel in coding order (see `_Stage.walk`); decoded
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

    def compress(self, images, labels=None, progress=None):
        """One self-contained blob (bytes) per image of `images` (N, H, W, C) integers, any H x W
        that `check_size` takes. `progress`: True for a progress bar past a few seconds (or a
        `Progress` to advance)."""
        import constriction

        images = self._check_images(images)
        labels = self._check_labels(labels, len(images))
        if not len(images):
            return []
        size = images.shape[1:3]
        progress = self._progress(progress, len(images), size)
        family = constriction.stream.model.Categorical(perfect=False)
        blobs = []
        for part, batch_labels in self._batches(len(images), labels):
            count = part.stop - part.start
            batch = np.zeros((CODING_BATCH,) + images.shape[1:], np.int32)  # filler slots: zero images
            batch[:count] = images[part]
            symbols = self.coding_symbols(batch)
            encoders = [constriction.stream.queue.RangeEncoder() for _ in range(count)]
            pending, done = [], [0]

            def encode_pending():  # in chunks of rows: the whole table of a large image would not fit
                if pending:
                    rows, start = np.stack(pending, axis=1), done[0]
                    for slot, encoder in enumerate(encoders):
                        encoder.encode(symbols[slot, start:start + len(pending)], family, frequencies(rows[slot]))
                    done[0] += len(pending)
                    pending.clear()

            def on_step(probabilities):
                pending.append(probabilities)
                if len(pending) == ENCODE_ROWS:
                    encode_pending()

            self._walk(batch, batch_labels, on_step, progress)
            encode_pending()
            header = bytes([FORMAT_VERSION]) + self.fingerprint + pack_size(size[0]) + pack_size(size[1])
            for slot, encoder in enumerate(encoders):
                blobs.append(header + image_checksum(images[part.start + slot])
                             + pack_words(encoder.get_compressed()))
        return blobs

    def decompress(self, blobs, labels=None, max_pixels=DEFAULT_MAX_PIXELS, progress=None):
        """Images int32 (N, H, W, C) from blobs of `compress` with this model, all of one size.

        Raises:
            CodecError: for a blob of another format version or model, a truncated or corrupted
                one, or one whose image has more than `max_pixels` pixels (None: no bound).
            ValueError: for blobs of images of different sizes (use `decode_each`).
        """
        decoded = self.decode_each(blobs, labels, max_pixels, progress)
        for result in decoded:
            if isinstance(result, CodecError):
                raise result
        sizes = sorted({image.shape[:2] for image in decoded})
        if len(sizes) > 1:
            shown = ", ".join(f"{height} x {width}" for height, width in sizes)
            raise ValueError(f"The blobs hold images of {len(sizes)} sizes ({shown}); decompress returns one array: "
                             "decode them with Codec.decode_each, or one size per call.")
        return np.stack(decoded) if decoded else np.zeros((0,) + self.image_shape, np.int32)

    def decode_each(self, blobs, labels=None, max_pixels=DEFAULT_MAX_PIXELS, progress=None, names=None):
        """[image int32 (H, W, C), or the `CodecError` saying why that blob cannot be decoded] for
        each blob, of any sizes: one bad blob does not stop the others (the command line's folder
        runs). `names`: what errors call each blob (default "blob N").

        Raises:
            ValueError: for arguments of the wrong type or labels that do not fit the model.
        """
        if isinstance(blobs, (bytes, bytearray)):
            raise ValueError("Expected a list of blobs (bytes). Received one bytes object; wrap it in a list.")
        blobs = [bytes(blob) if isinstance(blob, bytearray) else blob for blob in blobs]
        for number, blob in enumerate(blobs):
            if not isinstance(blob, bytes):
                raise ValueError(f"Expected blobs of type bytes. Received {type(blob).__name__} at index {number}.")
        labels = self._check_labels(labels, len(blobs))
        names = [f"blob {number}" for number in range(len(blobs))] if names is None else list(names)
        results, headers = [None] * len(blobs), {}
        for number, blob in enumerate(blobs):
            try:
                headers[number] = self._check_header(blob, names[number], max_pixels)
            except CodecError as error:
                results[number] = error
        groups = {}
        for number, header in headers.items():
            groups.setdefault(header.size, []).append(number)
        total = sum(-(-len(numbers) // CODING_BATCH) * self.steps(*size) for size, numbers in groups.items())
        progress = Progress(total) if progress is True else (progress or None)
        for size, numbers in groups.items():
            for start in range(0, len(numbers), CODING_BATCH):
                chunk = numbers[start:start + CODING_BATCH]
                batch_labels = None
                if labels is not None:
                    batch_labels = np.zeros(CODING_BATCH, np.int32)
                    batch_labels[:len(chunk)] = labels[chunk]
                decoded = self._decode_batch([blobs[n] for n in chunk], [headers[n] for n in chunk],
                                             [names[n] for n in chunk], size, batch_labels, progress)
                for number, result in zip(chunk, decoded):
                    results[number] = result
        return results

    def blob_size(self, blob, name="blob"):
        """(height, width) of the image of `blob` (bytes), from its header (checked).

        Raises:
            CodecError: for a blob of another format version or model, or a truncated header.
        """
        return self._check_header(bytes(blob), name, None).size

    def _where(self, blob, name):
        return f"{name} ({len(blob)} bytes)"

    def _check_header(self, blob, name, max_pixels):
        """The `_Header` of a blob this codec can decode, else a CodecError naming it."""
        import keras

        where = self._where(blob, name)
        header = _read_header(blob, self.image_shape[:2])
        if isinstance(header, str):
            raise CodecError(f"{where} {header}.")
        if header.fingerprint != self.fingerprint:
            raise CodecError(
                f"{where} was compressed with another model or Keras backend (fingerprint {header.fingerprint.hex()}, "
                f"this model's under {keras.backend.backend()!r} is {self.fingerprint.hex()}); decompress it "
                "with the model and backend that compressed it."
            )
        try:
            self.check_size(*header.size, max_pixels)
        except ValueError as error:
            raise CodecError(f"{where} holds an image that {error}.") from None
        return header

    def _undecodable(self, blob, name, detail):
        """The CodecError of a blob that does not decode to its checksum: corrupted or truncated,
        decoded with other labels, or (what the fingerprint cannot see) on other software."""
        labels = ", or decoded with another label than it was coded with" if self.num_classes is not None else ""
        return CodecError(f"{self._where(blob, name)} does not decode to the image it was coded from: it is corrupted "
                          f"or truncated{labels}, or the model's probabilities differ from the encoder's (another "
                          f"machine or software version): {detail}")

    def _decode_batch(self, blobs, headers, names, size, labels, progress=None):
        """[image or CodecError] of up to CODING_BATCH blobs of one image size, decoded in one
        batch; a slot whose coder fails stops being decoded, the others go on. A decoded image is
        checked three ways: the coder's words re-encoded from it must be the blob's payload exactly
        (no byte more or less), and its checksum must match."""
        import constriction

        decoders = [constriction.stream.queue.RangeDecoder(unpack_words(blob[header.payload:]))
                    for blob, header in zip(blobs, headers)]
        encoders = [constriction.stream.queue.RangeEncoder() for _ in blobs]
        failed = {}

        def on_step(probabilities):
            table, values = frequencies(probabilities[:len(blobs)]), {}
            for slot, decoder in enumerate(decoders):
                if slot in failed:
                    continue
                model = constriction.stream.model.Categorical(table[slot], perfect=False)
                try:
                    values[slot] = decoder.decode(model)
                except Exception as error:  # constriction raises on data it cannot decode
                    failed[slot] = self._undecodable(blobs[slot], names[slot], str(error))
                    continue
                encoders[slot].encode(np.array([values[slot]], np.int32), model)
            return values

        images = np.zeros((CODING_BATCH,) + tuple(size) + self.image_shape[2:], np.int32)
        self._walk(images, labels, on_step, progress)
        results = []
        for slot, (blob, header) in enumerate(zip(blobs, headers)):
            if slot not in failed:
                check = pixel_checksum if header.version == 2 else image_checksum
                if check(images[slot]) != header.checksum:
                    failed[slot] = self._undecodable(blob, names[slot], "the decoded pixels fail the checksum.")
                elif pack_words(encoders[slot].get_compressed()) != blob[header.payload:]:
                    failed[slot] = self._undecodable(blob, names[slot], "its payload is not the one that codes its "
                                                     "image (bytes added, removed or changed).")
            results.append(failed.get(slot, images[slot]))
        return results


_CODECS = weakref.WeakKeyDictionary()


def _codec(model):
    """The model's cached `Codec` (one traced step per model)."""
    if model not in _CODECS:
        _CODECS[model] = Codec(model)
    return _CODECS[model]


def compress(model, images, labels=None, *, progress=False):
    """One self-contained blob (bytes) per image of `images` (N, H, W, C), of any height and width
    (a multi-scale model's: multiples of its factor); `labels` (N,) for a class-conditional model;
    `progress`: a progress bar once coding takes a few seconds.

    Each blob is about -log2 p(image) bits plus a fixed overhead of at most 16 bytes for images
    whose sides are below 128 (11 of header, the rest the range coder's flush; one more header
    byte per side for each further 7 bits of it)."""
    return _codec(model).compress(images, labels, progress)


def decompress(model, blobs, labels=None, *, max_pixels=DEFAULT_MAX_PIXELS, progress=False):
    """The images (int32, (N, H, W, C)) of `compress`'s blobs of one image size, with the same
    model (and labels). `max_pixels` bounds the image size a blob may claim (None: no bound).

    Raises:
        CodecError (a ValueError): a blob of another model, a truncated or corrupted blob, one of
            more than `max_pixels` pixels.
    """
    return _codec(model).decompress(blobs, labels, max_pixels, progress)


def main(argv=None):
    """The command line (`pixel_keras.codec_cli.main`)."""
    from pixel_keras.codec_cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    from pixel_keras.cli import run_cli

    run_cli(main)
