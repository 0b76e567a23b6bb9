"""Lossless image compression with a trained model: range coding of each sub-pixel under the model's
conditional (the paper's use of exact likelihoods). An image costs about -log2 p(x) bits plus a few
bytes.

The decoder must see bit-identical coding distributions, so both sides compute them with one
compiled step per stage (`_Stage.advance`: the incremental model in keras.ops on the CPU, compiled
by `backend.model_function`: a tf.function with XLA off on TensorFlow, jax.jit on JAX), fed
identical inputs (the images with every value from the current sub-pixel on zeroed), and quantise
them the same way (`frequencies`). The encoder runs the step over the true images (teacher
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
backend is refused by name), and the pixel checksum and the coder's exhaustion check refuse the rest.

A multi-scale model (`pixel_keras.multiscale`) codes the small image `image[::f, ::f]` with its
small stage, then the rest of the large image with the conditional stage given it (the small pixels
known, stepped over but not coded again): one coder stream per image, the same header.

Backends: TensorFlow, JAX and PyTorch (eager, where the model's weights are: keep them on the
CPU for the codec). Blobs are backend-bound like they are machine-bound (above).

Blob format (7 bytes of header plus the coder's words, big-endian, trailing zero bytes dropped):
    byte 0      format version (`FORMAT_VERSION`)
    bytes 1-4   fingerprint of the model (`model_fingerprint`): decoding with another model raises
    bytes 5-6   16 bits of the CRC-32 of the pixels: a decoder that drifted (or a corrupted blob) raises
Image shape and levels come from the model; labels of a conditional model are the caller's.

Command line (one-line errors):
    python -m pixel_keras.codec compress --model RUN_DIR|model.keras IN.png|DIR OUT
    python -m pixel_keras.codec decompress --model RUN_DIR|model.keras IN|DIR OUT.png|DIR
"""

import hashlib
import json
import time
import weakref
import zlib

import numpy as np

FORMAT_VERSION = 2  # 2: coded at CODING_BATCH images per step (1: batch 1)
HEADER_BYTES = 7
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
# A progress bar (`Progress`) shows once coding has taken this long.
PROGRESS_AFTER_SECONDS = 3.0


class CodecError(ValueError):
    """A blob that cannot be decoded with this model: foreign, truncated or corrupted."""


class Progress:
    """Counts coding steps (one step call each) and shows a `keras.utils.Progbar` of them once the
    work has taken PROGRESS_AFTER_SECONDS: short runs stay quiet."""

    def __init__(self, total):
        self.total, self.done, self.started, self.bar = int(total), 0, time.monotonic(), None

    def advance(self, steps=1):
        self.done += steps
        if self.done % 64 and self.done < self.total:  # look at the clock every 64 steps only
            return
        if self.bar is None:
            if time.monotonic() - self.started < PROGRESS_AFTER_SECONDS:
                return
            import keras

            self.bar = keras.utils.Progbar(self.total, unit_name="step")
        self.bar.update(min(self.done, self.total))


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
    from pixel_keras.likelihood import model_spec, num_classes_of

    effective = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
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
    """16 bits of the CRC-32 of the pixel values (int32, C order), 2 bytes."""
    return (zlib.crc32(np.ascontiguousarray(image, np.int32).tobytes()) & 0xFFFF).to_bytes(2, "big")


def pack_words(words):
    """The range coder's 32-bit words as big-endian bytes without trailing zero bytes (the decoder
    reads missing words as zeros, so they carry nothing)."""
    return np.asarray(words, np.uint32).astype(">u4").tobytes().rstrip(b"\0")


def unpack_words(payload):
    """Inverse of `pack_words` up to trailing zero words: uint32 words, the last one zero-filled."""
    payload = bytes(payload) + b"\0" * (-len(payload) % 4)
    return np.frombuffer(payload, ">u4").astype(np.uint32)


class _Stage:
    """One incremental walk of a `Codec`: the model's own, or one phase of a multi-scale model (the
    small image, then the large image with the small pixels known). `coded`: which sub-pixels of
    the stage's image (flat, raster order) this stage codes; the others are known (stepped over)."""

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

    def _advance(self, states, fixed, context, images, index):
        """(states, probabilities (CODING_BATCH, levels) float32) of sub-pixel `index` (raster
        order, channels inside a pixel) of each image of `images` (CODING_BATCH, H, W, C): commits
        the previous pixel (and ends its row) first when `index` opens a new pixel. Values at or
        after `index` are zeroed, so the encoder (true images) and the decoder (partly decoded
        images) feed identical inputs. keras.ops only: the same step on every backend."""
        import keras
        from keras import ops

        self.advance_traces += 1
        _, width, channels = self.image_shape
        with keras.device(CODING_DEVICE):
            self.incremental.start(CODING_BATCH, context=context)  # the rules read their weights in this graph
            flat = ops.reshape(ops.arange(self.size, dtype="int32"), (1,) + self.image_shape)
            images = ops.where(flat < index, images, ops.zeros_like(images))
            position, channel = index // channels, index % channels
            row, col = position // width, position % width

            def commit_previous():
                before_row, before_col = (position - 1) // width, (position - 1) % width
                pixel = ops.slice(images, [0, before_row, before_col, 0], [CODING_BATCH, 1, 1, channels])
                committed = self.incremental.commit(states, fixed, pixel, before_row, before_col)
                return ops.cond(before_col == width - 1,
                                lambda: self.incremental.end_row(committed, fixed, before_row), lambda: committed)

            states = ops.cond(ops.logical_and(channel == 0, position > 0), commit_previous, lambda: list(states))
            pixel = ops.slice(images, [0, row, col, 0], [CODING_BATCH, 1, 1, channels])
            states, output = self.incremental.step(states, fixed, pixel, row, col)
            logits = ops.cast(ops.take(output[:, 0, 0], channel, axis=1), "float32")
            if self.num_levels == 2:
                probabilities = ops.stack([ops.sigmoid(-logits), ops.sigmoid(logits)], axis=-1)  # both tails exact
            else:
                probabilities = ops.softmax(logits, axis=-1)
            return states, probabilities

    def walk(self, images, labels, small, decode=None, progress=None):
        """Run the step over every sub-pixel of a coding batch `images` (CODING_BATCH, H, W, C)
        int32; with `decode(index, probabilities (CODING_BATCH, levels))` -> {slot: value}, write
        each decoded value into `images` as it goes. Returns the probabilities of the coded
        sub-pixels, (CODING_BATCH, coded, levels) float32."""
        import keras
        from keras import ops

        with keras.device(CODING_DEVICE):  # JAX: places the (uncommitted) weights' computation on the CPU
            tensor = ops.convert_to_tensor
            states, fixed, context = self.start(None if labels is None else tensor(labels),
                                                None if small is None else tensor(small))
            flat = images.reshape(CODING_BATCH, -1)
            table = np.zeros((CODING_BATCH, int(self.coded.sum()), self.num_levels), np.float32)
            current, row = tensor(images), 0
            for index in range(self.size):
                states, probabilities = self.advance(states, fixed, context, current, tensor(np.int32(index)))
                if progress is not None:
                    progress.advance()
                if not self.coded[index]:
                    continue
                table[:, row] = ops.convert_to_numpy(probabilities)
                row += 1
                if decode is not None:
                    for slot, value in decode(table[:, row - 1]).items():
                        flat[slot, index] = value
                    current = tensor(images)
        return table


class Codec:
    """Compresses and decompresses images for one model, CODING_BATCH images per step call (traces
    each stage's step once).

    Args:
        model: a model from `build_model` or `build_multiscale_model` (or loaded with
            `pixel_keras.io.load_model_file`).

    Raises:
        ValueError: for a model with a layer the incremental step has no rule for.
    """

    def __init__(self, model):
        from pixel_keras.likelihood import model_spec, num_classes_of
        from pixel_keras.multiscale import multiscale_factor

        self.model = model
        self.image_shape, self.num_levels = model_spec(model)
        self.num_classes = num_classes_of(model)
        self.factor = multiscale_factor(model)
        try:
            self.stages = self._stages()
        except NotImplementedError as error:
            raise ValueError(
                f"The codec needs a model that runs one sub-pixel at a time (pixel_keras.incremental); "
                f"this one does not: {str(error).split(';')[0]}."
            ) from None
        self.fingerprint = model_fingerprint(model)

    def _stages(self):
        """[_Stage]: the model's walk, or for a multi-scale model the small image's (every value
        coded) then the large image's given it (the small positions known, not coded again)."""
        from pixel_keras.incremental import IncrementalModel
        from pixel_keras.multiscale import conditional_parts, small_positions, stages

        height, width, channels = self.image_shape
        if self.factor is None:
            return [_Stage(self.model, IncrementalModel(self.model, self.image_shape), self.image_shape,
                           self.num_levels, np.ones(height * width * channels, bool))]
        small_model, _, f = stages(self.model)
        map_network, large_model = conditional_parts(self.model)
        small_shape = (height // f, width // f, channels)
        known = np.repeat(small_positions(self.image_shape, f).reshape(-1), channels)
        every = np.ones(int(np.prod(small_shape)), bool)
        return [_Stage(self.model, IncrementalModel(small_model, small_shape), small_shape, self.num_levels, every),
                _Stage(self.model, IncrementalModel(large_model, self.image_shape), self.image_shape, self.num_levels,
                       ~known, map_network)]

    def steps(self, height, width):
        """Step calls that code one coding batch of height x width images (every stage's sub-pixels)."""
        return sum(stage.size for stage in self.stages)

    def check_size(self, height, width, max_pixels=None):
        """Refuse (ValueError) a height x width image that this codec does not code, or that has
        more than `max_pixels` pixels: from a file's header, before decoding it."""
        if max_pixels is not None and height * width > max_pixels:
            raise ValueError(f"is {height} x {width} = {height * width} pixels, over the limit of {max_pixels} "
                             "(--max-pixels)")
        if (height, width) != self.image_shape[:2]:
            raise ValueError(f"is {height} x {width}; this model codes {self.image_shape[0]} x {self.image_shape[1]} "
                             "images")

    def blob_size(self, blob):
        """(height, width) of the image of `blob` (bytes), after checking its header.

        Raises:
            CodecError: for a blob of another format version or model, or a truncated header.
        """
        self._check_header(bytes(blob), 0)
        return self.image_shape[:2]

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

    def _walk(self, images, labels, decode=None, progress=None):
        """Every stage over a coding batch of large `images` (CODING_BATCH, H, W, C) int32, in
        place when decoding (`decode(probabilities)` -> {slot: value}, in coding order). Returns
        the coded sub-pixels' probabilities (CODING_BATCH, coded, levels) float32, in coding order."""
        if self.factor is None:
            return self.stages[0].walk(images, labels, None, decode, progress)
        f = self.factor
        small_stage, conditional = self.stages
        small = np.ascontiguousarray(images[:, ::f, ::f])
        small_table = small_stage.walk(small, labels, None, decode, progress)
        images[:, ::f, ::f] = small
        table = conditional.walk(images, labels, small, decode, progress)
        return np.concatenate([small_table, table], axis=1)

    def coding_symbols(self, images):
        """The values of `images` (N, H, W, C) in coding order (N, coded): a multi-scale model's
        small image first, then the rest of the large image."""
        images = np.asarray(images, np.int32)
        if self.factor is None:
            return images.reshape(len(images), -1)
        small = images[:, ::self.factor, ::self.factor].reshape(len(images), -1)
        return np.concatenate([small, images.reshape(len(images), -1)[:, self.stages[1].coded]], axis=1)

    def coding_probabilities(self, images, labels=None):
        """The float32 probabilities (CODING_BATCH, coded, levels) that code each image of one
        coding batch `images` (exactly CODING_BATCH images), in coding order: the floats that
        encoder and decoder must agree on bit for bit (tests compare them across batches)."""
        from pixel_keras.likelihood import check_images

        images = check_images(images, self.image_shape, self.num_levels).copy()
        if len(images) != CODING_BATCH:
            raise ValueError(f"Expected a coding batch of {CODING_BATCH} images. Received {len(images)}.")
        labels = self._check_labels(labels, CODING_BATCH)
        (_, batch_labels), = self._batches(CODING_BATCH, labels)
        return self._walk(images, batch_labels)

    def compress(self, images, labels=None, progress=None):
        """One self-contained blob (bytes) per image of `images` (N, H, W, C) integers."""
        import constriction

        from pixel_keras.likelihood import check_images

        images = check_images(images, self.image_shape, self.num_levels)
        labels = self._check_labels(labels, len(images))
        symbols = self.coding_symbols(images)
        blobs = []
        for part, batch_labels in self._batches(len(images), labels):
            batch = np.zeros((CODING_BATCH,) + self.image_shape, np.int32)  # filler slots: zero images
            batch[:part.stop - part.start] = images[part]
            table = self._walk(batch, batch_labels, progress=progress)
            for slot, number in enumerate(range(part.start, part.stop)):
                encoder = constriction.stream.queue.RangeEncoder()
                encoder.encode(symbols[number], constriction.stream.model.Categorical(perfect=False),
                               frequencies(table[slot]))
                header = bytes([FORMAT_VERSION]) + self.fingerprint + pixel_checksum(images[number])
                blobs.append(header + pack_words(encoder.get_compressed()))
        return blobs

    def decompress(self, blobs, labels=None, progress=None):
        """Images int32 (N, H, W, C) from blobs of `compress` with this model.

        Raises:
            CodecError: for a blob of another format version or model, or a truncated or corrupted one.
        """
        decoded = self.decode_each(blobs, labels, progress)
        for result in decoded:
            if isinstance(result, CodecError):
                raise result
        return np.stack(decoded) if decoded else np.zeros((0,) + self.image_shape, np.int32)

    def decode_each(self, blobs, labels=None, progress=None):
        """[image int32 (H, W, C), or the `CodecError` saying why that blob cannot be decoded] for
        each blob: one bad blob does not stop the others (the command line's folder runs).

        Raises:
            ValueError: for arguments of the wrong type or labels that do not fit the model.
        """
        if isinstance(blobs, (bytes, bytearray)):
            raise ValueError("Expected a list of blobs (bytes). Received one bytes object; wrap it in a list.")
        blobs = list(blobs)
        for number, blob in enumerate(blobs):
            if not isinstance(blob, (bytes, bytearray)):
                raise ValueError(f"Expected blobs of type bytes. Received {type(blob).__name__} at index {number}.")
        labels = self._check_labels(labels, len(blobs))
        results = [None] * len(blobs)
        for number, blob in enumerate(blobs):
            try:
                self._check_header(bytes(blob), number)
            except CodecError as error:
                results[number] = error
        good = [number for number, result in enumerate(results) if result is None]
        for part, batch_labels in self._batches(len(good), None if labels is None else labels[good]):
            numbers = good[part]
            decoded = self._decode_batch([bytes(blobs[number]) for number in numbers], batch_labels, numbers, progress)
            for number, result in zip(numbers, decoded):
                results[number] = result
        return results

    def _where(self, blob, number):
        return f"blob {number} ({len(blob)} bytes)"

    def _check_header(self, blob, number):
        import keras

        where = self._where(blob, number)
        if len(blob) < HEADER_BYTES:
            raise CodecError(f"{where} is truncated: shorter than the {HEADER_BYTES}-byte header.")
        if blob[0] != FORMAT_VERSION:
            raise CodecError(f"{where} has format version {blob[0]}; this codec reads version {FORMAT_VERSION}.")
        if blob[1:5] != self.fingerprint:
            raise CodecError(
                f"{where} was compressed with another model or Keras backend (fingerprint {blob[1:5].hex()}, "
                f"this model's under {keras.backend.backend()!r} is {self.fingerprint.hex()}); decompress it "
                "with the model and backend that compressed it."
            )

    def _undecodable(self, blob, number, detail):
        """The CodecError of a blob that does not decode to its checksum: corrupted or truncated, or
        (a conditional model) decoded with another label than it was coded with."""
        cause = "is corrupted or truncated"
        if self.num_classes is not None:
            cause = "does not decode: it is corrupted or truncated, or its label differs from the one it was coded with"
        return CodecError(f"{self._where(blob, number)} {cause}: {detail}")

    def _decode_batch(self, blobs, labels, numbers, progress=None):
        """[image or CodecError] of up to CODING_BATCH blobs (numbered `numbers`), decoded in one
        batch; a slot whose coder fails stops being decoded, the others go on."""
        import constriction

        decoders = [constriction.stream.queue.RangeDecoder(unpack_words(blob[HEADER_BYTES:])) for blob in blobs]
        failed = {}

        def decode(probabilities):
            table, values = frequencies(probabilities[:len(blobs)]), {}
            for slot, decoder in enumerate(decoders):
                if slot in failed:
                    continue
                try:
                    values[slot] = decoder.decode(constriction.stream.model.Categorical(table[slot], perfect=False))
                except Exception as error:  # constriction raises on data it cannot decode
                    failed[slot] = self._undecodable(blobs[slot], numbers[slot], str(error))
            return values

        images = np.zeros((CODING_BATCH,) + self.image_shape, np.int32)
        self._walk(images, labels, decode, progress)
        results = []
        for slot, (blob, decoder) in enumerate(zip(blobs, decoders)):
            if slot not in failed and (not decoder.maybe_exhausted() or pixel_checksum(images[slot]) != blob[5:7]):
                failed[slot] = self._undecodable(blob, numbers[slot], "the decoded pixels fail the checksum.")
            results.append(failed.get(slot, images[slot]))
        return results


_CODECS = weakref.WeakKeyDictionary()


def _codec(model):
    """The model's cached `Codec` (one traced step per model)."""
    if model not in _CODECS:
        _CODECS[model] = Codec(model)
    return _CODECS[model]


def compress(model, images, labels=None):
    """One self-contained blob (bytes) per image; `labels` (N,) for a class-conditional model.

    Each blob is about -log2 p(image) bits plus a fixed overhead of at most 12 bytes (7 of header,
    the rest the range coder's flush)."""
    return _codec(model).compress(images, labels)


def decompress(model, blobs, labels=None):
    """The images (int32, (N, H, W, C)) of `compress`'s blobs, with the same model (and labels).

    Raises:
        CodecError (a ValueError): a blob of another model, or a truncated or corrupted blob.
    """
    return _codec(model).decompress(blobs, labels)


def main(argv=None):
    """The command line (`pixel_keras.codec_cli.main`)."""
    from pixel_keras.codec_cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    from pixel_keras.cli import run_cli

    run_cli(main)
