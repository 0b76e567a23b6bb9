"""Lossless image compression with a trained model: range coding of each sub-pixel under the model's
conditional (the paper's use of exact likelihoods). An image costs about -log2 p(x) bits plus a few
bytes.

The decoder must see bit-identical coding distributions, so both sides compute them with one
compiled step (`Codec.advance`: the incremental model at batch 1, on the CPU, XLA off), fed
identical inputs (the image with every value from the current sub-pixel on zeroed), and quantise
them the same way (`frequencies`). The encoder runs the step over the true image (teacher forcing);
the decoder calls it, decodes one value, writes it, and calls it again. The entropy coder is
`constriction`'s range coder (`stream.queue`, 32-bit words, 24-bit probabilities).

Blob format (7 bytes of header plus the coder's words, big-endian, trailing zero bytes dropped):
    byte 0      format version (`FORMAT_VERSION`)
    bytes 1-4   fingerprint of the model (`model_fingerprint`): decoding with another model raises
    bytes 5-6   16 bits of the CRC-32 of the pixels: a decoder that drifted (or a corrupted blob) raises
Image shape and levels come from the model; labels of a conditional model are the caller's.

Command line (one-line errors):
    python -m pixel_keras.codec compress --model RUN_DIR|model.keras IN.png|DIR OUT
    python -m pixel_keras.codec decompress --model RUN_DIR|model.keras IN|DIR OUT.png|DIR
"""

import argparse
import hashlib
import json
import pathlib
import weakref
import zlib

import numpy as np

FORMAT_VERSION = 1
HEADER_BYTES = 7
# Integer frequencies of each coding distribution sum to 2**PRECISION_BITS, the range coder's own
# probability precision, with every level at least 1 (so every value stays codable).
PRECISION_BITS = 24
SUFFIX = ".pkc"


class CodecError(ValueError):
    """A blob that cannot be decoded with this model: foreign, truncated or corrupted."""


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
    computes with: stable through saving and loading a .keras file, different for other weights.

    A `MaskedConv2D` contributes its masked kernel: a .keras file stores that, so the raw
    variable's masked-out entries (which change nothing) differ after loading."""
    from keras import ops

    from pixel_keras.layers.masked_conv import MaskedConv2D
    from pixel_keras.likelihood import model_spec, num_classes_of

    effective = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, MaskedConv2D):
            effective[id(super(MaskedConv2D, layer).kernel)] = layer.kernel
    digest = hashlib.sha256()
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


class Codec:
    """Compresses and decompresses images for one model (traces its step once).

    Args:
        model: a model from `build_model` (or loaded with `pixel_keras.io.load_model_file`).

    Raises:
        ValueError: for a model with a layer the incremental step has no rule for (multi-scale
            models: not supported yet).
    """

    def __init__(self, model):
        import tensorflow as tf

        from pixel_keras.incremental import IncrementalModel
        from pixel_keras.likelihood import model_spec, num_classes_of

        self.model = model
        self.image_shape, self.num_levels = model_spec(model)
        self.num_classes = num_classes_of(model)
        try:
            self.incremental = IncrementalModel(model, self.image_shape)
        except NotImplementedError as error:  # e.g. a multi-scale model (not supported yet)
            raise ValueError(
                f"The codec needs a model that runs one sub-pixel at a time (pixel_keras.incremental); "
                f"this one does not: {str(error).split(';')[0]}."
            ) from None
        self.size = int(np.prod(self.image_shape))
        self.fingerprint = model_fingerprint(model)
        # One graph, batch 1, CPU, XLA off: the only code that computes coding distributions.
        self.advance = tf.function(self._advance, jit_compile=False, reduce_retracing=True)
        self._start = tf.function(lambda labels: self.incremental.start(1, labels)[0], jit_compile=False)

    def _advance(self, states, image, index, labels):
        """(states, probabilities (levels,) float32) of sub-pixel `index` (raster order, channels
        inside a pixel) given `image` (1, H, W, C): commits the previous pixel (and ends its row)
        first when `index` opens a new pixel. Values at or after `index` are zeroed, so the encoder
        (true image) and the decoder (partly decoded image) feed identical inputs."""
        import tensorflow as tf
        from keras import ops

        _, width, channels = self.image_shape
        with tf.device("/CPU:0"):
            _, fixed = self.incremental.start(1, labels)
            flat = tf.reshape(tf.range(self.size), (1,) + self.image_shape)
            image = tf.where(flat < index, image, tf.zeros_like(image))
            position, channel = index // channels, index % channels
            row, col = position // width, position % width

            def commit_previous():
                before_row, before_col = (position - 1) // width, (position - 1) % width
                pixel = ops.slice(image, [0, before_row, before_col, 0], [1, 1, 1, channels])
                committed = self.incremental.commit(states, fixed, pixel, before_row, before_col)
                return tf.cond(before_col == width - 1,
                               lambda: self.incremental.end_row(committed, fixed, before_row), lambda: committed)

            states = tf.cond(tf.logical_and(channel == 0, position > 0), commit_previous, lambda: list(states))
            pixel = ops.slice(image, [0, row, col, 0], [1, 1, 1, channels])
            states, output = self.incremental.step(states, fixed, pixel, row, col)
            logits = tf.cast(tf.gather(output[0, 0, 0], channel), tf.float32)
            if self.num_levels == 2:
                probabilities = tf.stack([tf.sigmoid(-logits), tf.sigmoid(logits)])  # both tails exact
            else:
                probabilities = tf.nn.softmax(logits)
            return states, probabilities

    def _walk(self, image, label, decoder=None):
        """Run the step over every sub-pixel of one image; with a `decoder`, decode each value into
        `image` as it goes. Returns (image, probabilities (size, levels))."""
        import constriction
        import tensorflow as tf

        labels = None if label is None else tf.constant([label], tf.int32)
        states = self._start(labels)
        flat = image.reshape(-1)
        table = np.zeros((self.size, self.num_levels), np.float32)
        for index in range(self.size):
            states, probabilities = self.advance(states, tf.constant(image), tf.constant(index, tf.int32), labels)
            table[index] = probabilities.numpy()
            if decoder is not None:
                model = constriction.stream.model.Categorical(frequencies(table[index:index + 1])[0], perfect=False)
                flat[index] = decoder.decode(model)
        return image, table

    def _check_labels(self, labels, count):
        from pixel_keras.likelihood import check_labels

        labels = check_labels(labels, self.num_classes, count)
        return [None] * count if labels is None else [int(label) for label in labels]

    def compress(self, images, labels=None):
        """One self-contained blob (bytes) per image of `images` (N, H, W, C) integers."""
        import constriction

        from pixel_keras.likelihood import check_images

        images = check_images(images, self.image_shape, self.num_levels)
        blobs = []
        for image, label in zip(images, self._check_labels(labels, len(images))):
            _, table = self._walk(image[None].copy(), label)
            encoder = constriction.stream.queue.RangeEncoder()
            encoder.encode(image.reshape(-1).astype(np.int32), constriction.stream.model.Categorical(perfect=False),
                           frequencies(table))
            payload = pack_words(encoder.get_compressed())
            header = bytes([FORMAT_VERSION]) + self.fingerprint + pixel_checksum(image)
            blobs.append(header + payload)
        return blobs

    def decompress(self, blobs, labels=None):
        """Images int32 (N, H, W, C) from blobs of `compress` with this model.

        Raises:
            CodecError: for a blob of another format version or model, or a truncated or corrupted one.
        """
        if isinstance(blobs, (bytes, bytearray)):
            raise ValueError("Expected a list of blobs (bytes). Received one bytes object; wrap it in a list.")
        blobs = list(blobs)
        for number, blob in enumerate(blobs):
            if not isinstance(blob, (bytes, bytearray)):
                raise ValueError(f"Expected blobs of type bytes. Received {type(blob).__name__} at index {number}.")
        images = np.zeros((len(blobs),) + self.image_shape, np.int32)
        for number, (blob, label) in enumerate(zip(blobs, self._check_labels(labels, len(blobs)))):
            images[number] = self._decode(bytes(blob), label, number)[0]
        return images

    def _decode(self, blob, label, number):
        import constriction

        where = f"blob {number} ({len(blob)} bytes)"
        if len(blob) < HEADER_BYTES:
            raise CodecError(f"{where} is truncated: shorter than the {HEADER_BYTES}-byte header.")
        if blob[0] != FORMAT_VERSION:
            raise CodecError(f"{where} has format version {blob[0]}; this codec reads version {FORMAT_VERSION}.")
        if blob[1:5] != self.fingerprint:
            raise CodecError(
                f"{where} was compressed with another model (fingerprint {blob[1:5].hex()}, this model's is "
                f"{self.fingerprint.hex()}); decompress it with the model that compressed it."
            )
        decoder = constriction.stream.queue.RangeDecoder(unpack_words(blob[HEADER_BYTES:]))
        image = np.zeros((1,) + self.image_shape, np.int32)
        try:
            self._walk(image, label, decoder)
            exhausted = decoder.maybe_exhausted()
        except Exception as error:  # constriction raises on data it cannot decode
            raise CodecError(f"{where} is corrupted or truncated: {error}") from None
        if not exhausted or pixel_checksum(image[0]) != blob[5:7]:
            raise CodecError(f"{where} is corrupted or truncated: the decoded pixels fail the checksum.")
        return image


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


def read_png(path):
    """An image file as an int32 array (H, W, C) of its stored values (no rescaling: a PNG of a
    17-level model holds 0 .. 16)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            array = np.asarray(image)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from None
    array = array.astype(np.int32)
    return array[..., None] if array.ndim == 2 else array


def write_png(path, image):
    """Write int32 values (H, W, C), C = 1 or 3, < 256, losslessly as an 8-bit PNG."""
    from PIL import Image

    array = np.asarray(image, np.uint8)
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path, format="PNG")


def _jobs(source, destination, pattern, suffix):
    """[(input file, output file)]: one pair for a file, one per matching file of a folder."""
    source, destination = pathlib.Path(source), pathlib.Path(destination)
    if not source.exists():
        raise ValueError(f"no such file or folder: {source}")
    if source.is_file():
        return [(source, destination)], False
    files = sorted(path for path in source.iterdir() if path.is_file() and path.suffix.lower() == pattern)
    if not files:
        raise ValueError(f"no {pattern} files in folder {source}")
    destination.mkdir(parents=True, exist_ok=True)
    return [(path, destination / (path.stem + suffix)) for path in files], True


def main(argv=None):
    """`python -m pixel_keras.codec compress|decompress --model M IN OUT` (see the module doc)."""
    import keras

    from pixel_keras.io import load_model_file

    parser = argparse.ArgumentParser(prog="python -m pixel_keras.codec", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("compress", "decompress"))
    parser.add_argument("--model", required=True, help="run directory (its best.keras) or a .keras file")
    parser.add_argument("--label", type=int, default=None, help="class of every image (class-conditional models)")
    parser.add_argument("input", help="compress: a PNG or a folder of PNGs; decompress: a blob or a folder of blobs")
    parser.add_argument("output", help=f"compress: the blob (folder: one NAME{SUFFIX} each); decompress: PNG(s)")
    args = parser.parse_args(argv)
    model, _ = load_model_file(args.model)
    codec = _codec(model)
    compressing = args.command == "compress"
    jobs, folder = (_jobs(args.input, args.output, ".png", SUFFIX) if compressing
                    else _jobs(args.input, args.output, SUFFIX, ".png"))
    labels = None if args.label is None else np.array([args.label])
    progress = keras.utils.Progbar(len(jobs), unit_name="image") if folder else None
    for number, (source, destination) in enumerate(jobs):
        try:
            if compressing:
                destination.write_bytes(codec.compress(read_png(source)[None], labels)[0])
            else:
                write_png(destination, codec.decompress([source.read_bytes()], labels)[0])
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None
        if progress is not None:
            progress.update(number + 1)
    if not folder:
        print(f"{args.command}ed {jobs[0][0]} -> {jobs[0][1]}")
    return 0


if __name__ == "__main__":
    from pixel_keras.cli import run_cli

    run_cli(main)
