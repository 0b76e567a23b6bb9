"""`python -m pixel_keras.codec`: image files to blobs and back, one file or a folder at a time.

    python -m pixel_keras.codec compress --model RUN_DIR|model.keras IN.png|DIR OUT [--overwrite]
    python -m pixel_keras.codec decompress --model RUN_DIR|model.keras IN|DIR OUT.png|DIR [--overwrite]

Errors are one line (`pixel_keras.cli.run_cli`). What it promises (README, "Lossless compression"):
- the pixels coded are the pixels a viewer shows (`pixel_keras.data.viewed_image(exact=True)`):
  palette and 1-bit images as their colours, or one line saying why not (transparency, 16-bit, ...);
- no data loss: an existing output is refused unless --overwrite, outputs that would collide
  (names equal up to case) are refused, both before anything is written; each output is written
  to a temporary file beside it and renamed into place, so no partial file is ever left;
- in a folder run a bad input is named, the others are still coded, and the exit status is 2;
- sizes are read from the file's header and checked (--max-pixels) before anything is decoded.
"""

import argparse
import collections
import io
import os
import pathlib
import secrets
import sys
import warnings

import numpy as np

from pixel_keras.cli import add_verbose_flag, file_in_the_way, program_name, turn_off_the_failing_remapper
from pixel_keras.codec.coder import DEFAULT_MAX_PIXELS, codec_for
from pixel_keras.codec.format import CODING_BATCH, SUFFIX, CodecError
from pixel_keras.codec.stages import Progress

# The first paragraph of --help.
DESCRIPTION = ("Lossless image compression with a trained model: range coding of each sub-pixel under the model's "
               "conditional (the paper's use of exact likelihoods). An image costs about -log2 p(x) bits plus a few "
               "bytes.")


class _Parser(argparse.ArgumentParser):
    """Usage errors as one ValueError line (`run_cli` prints it), like every other refusal."""

    def error(self, message):
        raise ValueError(f"{message} (see python -m pixel_keras.codec --help)")


def build_parser():
    parser = _Parser(prog=program_name("pixel_keras.codec"), description=DESCRIPTION,
                     epilog="Coded exactly as a viewer shows them: 8-bit grey, RGB, palette and 1-bit images, opaque "
                            "(transparency, 16-bit and other modes are refused; colour for a grey model only if "
                            "R = G = B). Any height and width (multi-scale models: multiples of the factor). "
                            "Existing outputs are refused unless --overwrite; outputs are written whole or not at "
                            "all.")
    parser.add_argument("command", choices=("compress", "decompress"))
    parser.add_argument("--model", required=True,
                        help="run directory (its best.keras), a .keras file or pretrained:NAME (a shipped model)")
    parser.add_argument("--label", type=int, default=None,
                        help="class of every image (class-conditional models; needed there)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing output files (without it, an existing output is an error)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help=f"largest height x width of one image (default {DEFAULT_MAX_PIXELS}), checked from the "
                             "file's header before decoding")
    parser.add_argument("input", help="compress: an image file (PNG, ...) or a folder of PNGs; "
                                      f"decompress: a {SUFFIX} blob or a folder of them")
    parser.add_argument("output", help=f"compress: the blob (for a folder: a folder, one NAME{SUFFIX} each); "
                                       "decompress: the PNG (for a folder: a folder). Missing folders are created.")
    add_verbose_flag(parser)
    return parser


# Failed files of a folder run named one line each, up to this many (then a count).
FAILURES_LISTED = 20


def check_flags(args, coder):
    """Refuse a --label that does not fit the model, naming it (before anything is written)."""
    if coder.num_classes is None and args.label is not None:
        raise ValueError(f"--label {args.label} given, but this model is unconditional (it takes no label).")
    if coder.num_classes is not None:
        if args.label is None:
            raise ValueError(f"this model is class-conditional: give --label, the class (0 .. {coder.num_classes - 1}) "
                             "the images were (or are to be) coded with.")
        if not 0 <= args.label < coder.num_classes:
            raise ValueError(f"--label must be a class in 0 .. {coder.num_classes - 1}. Received --label {args.label}.")


def plan_jobs(source, destination, compressing, overwrite):
    """([(input file, output file)], folder run?): one pair for a file, one per matching file of a
    folder. Refuses, before anything is written: a missing input, an output that is its input,
    outputs under a file, outputs whose names are equal up to case, and existing outputs unless
    `overwrite`."""
    source, destination = pathlib.Path(source), pathlib.Path(destination)
    suffix, pattern = (SUFFIX, ".png") if compressing else (".png", SUFFIX)
    if not source.exists():
        raise ValueError(f"no such file or folder: {source}")
    if source.is_dir():
        if destination.exists() and not destination.is_dir():
            raise ValueError(f"{destination} is a file; the output of a folder is a folder")
        files = sorted(path for path in source.iterdir() if path.is_file() and path.suffix.lower() == pattern)
        if not files:
            raise ValueError(f"no {pattern} files in folder {source}")
        jobs, folder = [(path, destination / (path.stem + suffix)) for path in files], True
    else:
        if destination.is_dir():  # a file into a folder: NAME.pkc / NAME.png in it
            destination = destination / (source.stem + suffix)
        jobs, folder = [(source, destination)], False
    blocking = file_in_the_way(destination if folder else destination.parent)
    if blocking is not None:
        raise ValueError(f"cannot write {destination}: {blocking} is a file, not a folder; nothing was written")
    by_name = {}
    for input_file, output_file in jobs:
        key = str(output_file).casefold()
        if key in by_name:
            raise ValueError(f"{by_name[key]} and {input_file} would both be written to {output_file} (names that "
                             "differ only in case): rename one; nothing was written")
        by_name[key] = input_file
    for input_file, output_file in jobs:
        if output_file.resolve() == input_file.resolve() or (output_file.exists() and output_file.samefile(input_file)):
            raise ValueError(f"the output {output_file} is the input itself; nothing was written")
    existing = [output_file for _, output_file in jobs if output_file.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise ValueError(f"{existing[0]} exists{more}: pass --overwrite to replace; nothing was written")
    return jobs, folder


def write_atomically(path, data, overwrite):
    """Write `data` (bytes) to `path` through a temporary file in the same folder, renamed into
    place: an error or an interrupt never leaves a partial `path`. Without `overwrite`, a `path`
    that appeared meanwhile is not replaced (a hard link, which fails on an existing name)."""
    path = pathlib.Path(path)
    temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        if overwrite:
            os.replace(temporary, path)
            return
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise ValueError(f"{path} exists: pass --overwrite to replace") from None
        except OSError:  # a file system without hard links
            if path.exists():
                raise ValueError(f"{path} exists: pass --overwrite to replace") from None
            os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def _open_image(path):
    """A PIL image opened lazily (header read, pixels not decoded yet)."""
    from PIL import Image

    with warnings.catch_warnings():  # the size is checked against --max-pixels instead
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except Image.DecompressionBombError as error:
            raise ValueError(f"is too large to open: {error}") from None
        except (OSError, ValueError, SyntaxError, EOFError) as error:
            raise ValueError(f"cannot be read as an image: {error}") from None


def image_size(path):
    """(height, width) of an image file as shown, from its header only: the EXIF orientation read
    where the header holds it (a PNG's eXIf after its pixels is only seen on decoding; the pixel
    count, which --max-pixels bounds, is the same either way)."""
    from PIL import Image

    with _open_image(path) as image:
        width, height = image.size
        if image.info.get("exif"):  # getexif() would decode a PNG to look for a late eXIf chunk
            exif = Image.Exif()
            exif.load(image.info["exif"])
            if exif.get(0x0112) in (5, 6, 7, 8):  # turned a quarter turn
                width, height = height, width
    return height, width


def read_image(path, channels, num_levels):
    """An image file as int32 (H, W, channels): the values a viewer shows (`viewed_image`, exact),
    checked against the model's levels.

    Raises:
        ValueError: saying why the file cannot be coded exactly (not naming it: the caller does).
    """
    from PIL import Image

    from pixel_keras.data import viewed_image
    from pixel_keras.likelihood import check_images

    with _open_image(path) as image:
        try:
            array = np.asarray(viewed_image(image, channels, exact=True))
        except (OSError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
            raise ValueError(f"cannot be read as an image: {error}") from None
    array = array.reshape(array.shape[:2] + (channels,))
    return check_images(array[None], array.shape, num_levels)[0]


def png_bytes(image):
    """int32 values (H, W, C), C = 1 or 3, < 256, as the bytes of an 8-bit PNG."""
    from PIL import Image

    array = np.asarray(image, np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buffer, format="PNG")
    return buffer.getvalue()


def _chunks(jobs, sizes):
    """The jobs grouped by image size (one coding step per size), CODING_BATCH at a time."""
    groups = collections.defaultdict(list)
    for job in jobs:
        groups[sizes[job[0]]].append(job)
    for size, group in groups.items():
        for start in range(0, len(group), CODING_BATCH):
            yield size, group[start:start + CODING_BATCH]


def compress_files(coder, jobs, labels_of, max_pixels, overwrite, failures):
    """Code each input image into its blob; a bad input goes to `failures` [(file, reason)]."""
    channels = coder.image_shape[2]
    sizes = {}
    for source, _ in jobs:  # every header first: nothing is decoded before its size is checked
        try:
            size = image_size(source)
            coder.check_size(*size, max_pixels)
            sizes[source] = size
        except ValueError as error:
            failures.append((source, str(error)))
    jobs = [job for job in jobs if job[0] in sizes]
    chunks = list(_chunks(jobs, sizes))
    progress = Progress(sum(coder.steps(*size) for size, _ in chunks))
    for size, chunk in chunks:
        images, readable = [], []
        for source, target in chunk:
            try:
                image = read_image(source, channels, coder.num_levels)
                if image.shape[:2] != size:  # turned by an EXIF orientation that only decoding found
                    coder.check_size(*image.shape[:2], max_pixels)
                    _write(source, target, coder.compress(image[None], labels_of(1))[0], overwrite, failures)
                    continue
                images.append(image)
                readable.append((source, target))
            except ValueError as error:
                failures.append((source, str(error)))
        if not readable:
            continue
        blobs = coder.compress(np.stack(images), labels_of(len(readable)), progress)
        for (source, target), blob in zip(readable, blobs):
            _write(source, target, blob, overwrite, failures)


def decompress_files(coder, jobs, labels_of, max_pixels, overwrite, failures):
    """Decode each blob into its PNG; a bad blob goes to `failures` [(file, reason)]."""
    blobs, sizes = {}, {}
    for source, _ in jobs:
        try:
            blob = _read_blob(source, coder, max_pixels)
            size = coder.blob_size(blob)
            coder.check_size(*size, max_pixels)
            sizes[source], blobs[source] = size, blob
        except ValueError as error:  # CodecError included
            failures.append((source, str(error)))
    jobs = [job for job in jobs if job[0] in blobs]
    chunks = list(_chunks(jobs, sizes))
    progress = Progress(sum(coder.steps(*size) for size, _ in chunks))
    for _, chunk in chunks:
        results = coder.decode_each([blobs[source] for source, _ in chunk], labels_of(len(chunk)), max_pixels,
                                    progress, names=["blob"] * len(chunk))
        for (source, target), result in zip(chunk, results):
            if isinstance(result, CodecError):
                failures.append((source, str(result)))
            else:
                _write(source, target, png_bytes(result), overwrite, failures)


def _read_blob(path, coder, max_pixels):
    """A blob file's bytes; refuses one far larger than any blob of at most `max_pixels` pixels
    (3 bytes per sub-pixel bound the coder's output) before reading it."""
    limit = 64 + 3 * max_pixels * coder.image_shape[2]
    if path.stat().st_size > limit:
        raise CodecError(f"is {path.stat().st_size} bytes, more than a blob of at most {max_pixels} pixels can be "
                         "(--max-pixels)")
    return path.read_bytes()


def _write(source, target, data, overwrite, failures):
    try:
        write_atomically(target, data, overwrite)
    except ValueError as error:
        failures.append((source, str(error)))
    except OSError as error:
        failures.append((source, f"cannot write {target}: {error}"))


def main(argv=None):
    """`python -m pixel_keras.codec compress|decompress --model M IN OUT` (see the module doc)."""
    from pixel_keras.io import load_model_file

    args = build_parser().parse_args(argv)
    if args.max_pixels < 1:  # before loading the model: a flag error costs nothing
        raise ValueError(f"--max-pixels must be a positive number of pixels. Received --max-pixels {args.max_pixels}.")
    compressing = args.command == "compress"
    jobs, folder = plan_jobs(args.input, args.output, compressing, args.overwrite)
    turn_off_the_failing_remapper()
    model, _ = load_model_file(args.model)
    coder = codec_for(model)
    check_flags(args, coder)
    for _, target in jobs:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(f"cannot create the folder of {target}: {error.strerror or error}") from None

    def labels_of(count):
        return None if args.label is None else np.full(count, args.label, np.int32)

    failures = []
    run = compress_files if compressing else decompress_files
    run(coder, jobs, labels_of, args.max_pixels, args.overwrite, failures)
    verb = f"{args.command}ed"
    if not folder:
        if failures:
            raise ValueError(f"{failures[0][0]}: {failures[0][1]}")
        print(f"{verb} {jobs[0][0]} -> {jobs[0][1]}")
        return 0
    if failures:
        for source, reason in failures[:FAILURES_LISTED]:  # one line each; the error line sums up
            print(f"{source}: {' '.join(reason.split())}", file=sys.stderr)
        if len(failures) > FAILURES_LISTED:
            print(f"... and {len(failures) - FAILURES_LISTED} more", file=sys.stderr)
        raise ValueError(f"{len(failures)} of {len(jobs)} files not {verb} (the others were), listed above")
    print(f"{verb} {len(jobs)} files of {args.input} -> {args.output}")
    return 0
