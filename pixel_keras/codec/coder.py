"""Lossless image compression with a trained model: range coding of each sub-pixel under the model's
conditional (the paper's use of exact likelihoods). An image costs about -log2 p(x) bits plus a few
bytes. This module turns images into blobs and back: `Codec` range-codes the distributions that
its `stages.CodingModel` walks, into blobs of `format`.

The encoder runs the step over the true images (teacher forcing); the decoder calls it, decodes one
value per image, writes it, and calls it again. The entropy coder is `constriction`'s range coder
(`stream.queue`, 32-bit words, 24-bit probabilities). Blobs are bound to the machine, software and
Keras backend that coded them (`stages`); a drift is not silent: the fingerprint covers the backend
(a blob of another backend is refused by name), and the checks of every decoded image refuse the
rest: its CRC-32, and its payload, which must be exactly what re-encoding the decoded image gives
(no byte more or less: trailing garbage is refused).
"""

import weakref

import numpy as np

from pixel_keras.codec.format import (CODING_BATCH, CodecError, frequencies, image_checksum, model_fingerprint,
                                      pack_header, pack_words, read_header, unpack_words)
from pixel_keras.codec.stages import CodingModel, Progress

# The command line's default bound on one image (height x width), checked from a file's header.
DEFAULT_MAX_PIXELS = 1_000_000
# Coding steps whose probabilities the encoder collects before range-coding them (memory: 16 MB
# at 256 levels), rather than the table of a whole image.
ENCODE_ROWS = 1024


class Codec(CodingModel):
    """Compresses and decompresses images of any height and width (a multi-scale model's: multiples
    of its factor) for one model, CODING_BATCH images per step call (each stage's step traced once
    per image size). Args and errors: `CodingModel`'s."""

    def __init__(self, model):
        super().__init__(model)
        self.fingerprint = model_fingerprint(model)

    def compress(self, images, labels=None, progress=None):
        """One self-contained blob (bytes) per image of `images` (N, H, W, C) integers, any H x W
        that `check_size` takes. `progress`: True for a progress bar past a few seconds (or a
        `Progress` to advance)."""
        images = self._check_images(images)
        labels = self._check_labels(labels, len(images))
        if not len(images):
            return []
        size = images.shape[1:3]
        progress = self._progress(progress, len(images), size)
        blobs = []
        for part, batch_labels in self._batches(len(images), labels):
            count = part.stop - part.start
            batch = np.zeros((CODING_BATCH,) + images.shape[1:], np.int32)  # filler slots: zero images
            batch[:count] = images[part]
            words = self._encode_batch(batch, batch_labels, count, progress)
            header = pack_header(self.fingerprint, size)
            for slot, payload in enumerate(words):
                blobs.append(header + image_checksum(images[part.start + slot]) + pack_words(payload))
        return blobs

    def _encode_batch(self, batch, labels, count, progress):
        """The range coder's words of the first `count` images of a coding batch `batch`."""
        import constriction

        family = constriction.stream.model.Categorical(perfect=False)
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

        self._walk(batch, labels, on_step, progress)
        encode_pending()
        return [encoder.get_compressed() for encoder in encoders]

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
        """The `format.Header` of a blob this codec can decode, else a CodecError naming it."""
        import keras

        where = self._where(blob, name)
        header = read_header(blob, self.image_shape[:2])
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
                if not header.checks(images[slot]):
                    failed[slot] = self._undecodable(blob, names[slot], "the decoded pixels fail the checksum.")
                elif pack_words(encoders[slot].get_compressed()) != blob[header.payload:]:
                    failed[slot] = self._undecodable(blob, names[slot], "its payload is not the one that codes its "
                                                     "image (bytes added, removed or changed).")
            results.append(failed.get(slot, images[slot]))
        return results


_CODECS = weakref.WeakKeyDictionary()


def codec_for(model):
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
    return codec_for(model).compress(images, labels, progress)


def decompress(model, blobs, labels=None, *, max_pixels=DEFAULT_MAX_PIXELS, progress=False):
    """The images (int32, (N, H, W, C)) of `compress`'s blobs of one image size, with the same
    model (and labels). `max_pixels` bounds the image size a blob may claim (None: no bound).

    Raises:
        CodecError (a ValueError): a blob of another model, a truncated or corrupted blob, one of
            more than `max_pixels` pixels.
    """
    return codec_for(model).decompress(blobs, labels, max_pixels, progress)
