"""Deprecated name of the codec's command line: use `pixel_keras.codec.cli` (or run
`python -m pixel_keras.codec`). Re-exports its public names."""

import warnings

from pixel_keras.codec.cli import (DESCRIPTION, FAILURES_LISTED, build_parser, check_flags, compress_files,
                                   decompress_files, image_size, main, plan_jobs, png_bytes, read_image,
                                   write_atomically)

__all__ = ["DESCRIPTION", "FAILURES_LISTED", "build_parser", "check_flags", "compress_files", "decompress_files",
           "image_size", "main", "plan_jobs", "png_bytes", "read_image", "write_atomically"]

warnings.warn("pixel_keras.codec_cli is deprecated: use pixel_keras.codec.cli (on the command line: "
              "python -m pixel_keras.codec)", DeprecationWarning, stacklevel=2)
