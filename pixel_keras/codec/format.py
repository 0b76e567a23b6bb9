"""The blob format: what a blob's bytes mean, apart from any model run. The coder (`coder`) writes
and reads blobs with these constants and functions only, so a change to the bitstream shows here.

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

The coding distributions are quantised the same way on both sides (`frequencies`); the entropy
coder is `constriction`'s range coder (`stream.queue`, 32-bit words, 24-bit probabilities).
"""

import hashlib
import json
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
            effective[id(layer.kernel_variable)] = layer.kernel
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


def pack_header(fingerprint, size):
    """The header of format 3 up to its checksum: version, the model's `fingerprint`, the image's
    `size` (height, width) as varints."""
    return bytes([FORMAT_VERSION]) + fingerprint + pack_size(size[0]) + pack_size(size[1])


class Header:
    """A parsed blob header: format `version`, model `fingerprint`, image `size` (height, width),
    `checksum` bytes and where the coder's `payload` starts."""

    def __init__(self, version, fingerprint, size, checksum, payload):
        self.version, self.fingerprint, self.size, self.checksum, self.payload = (
            version, fingerprint, size, checksum, payload)

    def checks(self, image):
        """True when `image` has this header's checksum (format 2's or 3's)."""
        check = pixel_checksum if self.version == 2 else image_checksum
        return check(image) == self.checksum


def read_header(blob, model_size):
    """The `Header` of `blob`, or a reason (str) why it has none: empty, truncated, unknown version.
    Format 2 has no size: its images have the model's (`model_size`)."""
    if not blob:
        return "is empty"
    version = blob[0]
    if version == 2:
        if len(blob) < HEADER_BYTES_V2:
            return f"is truncated: shorter than format 2's {HEADER_BYTES_V2}-byte header"
        return Header(2, blob[1:5], tuple(model_size), blob[5:7], HEADER_BYTES_V2)
    if version != FORMAT_VERSION:
        return f"has format version {version}; this codec reads versions {', '.join(map(str, READABLE_VERSIONS))}"
    height = unpack_size(blob, 5)
    width = height and unpack_size(blob, height[1])
    if not width or width[1] + 4 > len(blob):
        return "is truncated: it ends inside its header"
    end = width[1] + 4
    return Header(FORMAT_VERSION, blob[1:5], (height[0], width[0]), blob[width[1]:end], end)
