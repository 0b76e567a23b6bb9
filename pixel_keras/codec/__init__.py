"""Lossless image compression with a trained model: range coding of each sub-pixel under the model's
conditional (the paper's use of exact likelihoods). An image costs about -log2 p(x) bits plus a few
bytes.

    from pixel_keras import codec
    blobs = codec.compress(model, images)      # one self-contained blob (bytes) per image
    images = codec.decompress(model, blobs)    # int32 (N, H, W, C), equal bit for bit

The modules, each importing only those above it: `format` (the blob format: header, sizes, words,
checksums, fingerprint), `stages` (the one compiled step that computes the coding distributions, and
why encoder and decoder agree on them bit for bit), `coder` (`Codec`: images to blobs and back),
`cli` (the command line, `python -m pixel_keras.codec compress|decompress ...`). This package
re-exports the format's and the coder's public names; the command line is `pixel_keras.codec.cli`.
"""

from pixel_keras.codec.coder import (DEFAULT_MAX_PIXELS, ENCODE_ROWS, Codec, codec_for, compress,
                                     decompress)
from pixel_keras.codec.format import (CODING_BATCH, FIXED_HEADER_BYTES, FORMAT_VERSION, HEADER_BYTES_V2,
                                      PRECISION_BITS, READABLE_VERSIONS, SUFFIX, CodecError, Header,
                                      frequencies, image_checksum, model_fingerprint, pack_header, pack_size,
                                      pack_words, pixel_checksum, read_header, unpack_size, unpack_words)
from pixel_keras.codec.stages import CODING_DEVICE, PROGRESS_AFTER_SECONDS, CodingModel, Progress, Stage
from pixel_keras.deprecation import moved, no_attribute

__all__ = [
    "CODING_BATCH", "CODING_DEVICE", "DEFAULT_MAX_PIXELS", "ENCODE_ROWS", "FIXED_HEADER_BYTES", "FORMAT_VERSION",
    "HEADER_BYTES_V2", "PRECISION_BITS", "PROGRESS_AFTER_SECONDS", "READABLE_VERSIONS", "SUFFIX", "Codec",
    "CodecError", "CodingModel", "Header", "Progress", "Stage", "codec_for", "compress", "decompress",
    "frequencies", "image_checksum", "model_fingerprint", "pack_header", "pack_size", "pack_words",
    "pixel_checksum", "read_header", "unpack_size", "unpack_words",
]


def __getattr__(name):
    if name == "main":  # the command line's, with it in `cli` (CHANGELOG.md)
        from pixel_keras.codec import cli

        return moved(__name__, name, cli)
    raise no_attribute(__name__, name)
