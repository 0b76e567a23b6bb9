"""Lossless compression: bits/dim of `pixel_keras.codec` with a trained model against PNG, WebP and
JPEG XL, on Fashion-MNIST test images, each image compressed on its own.

    python -m benchmarks.compression --model RUN_DIR|model.keras [--num 1000] [--decode-num N] [--stitch K]

--stitch K: whole images larger than the training crops, each K x K consecutive test images
stitched into one 28K x 28K image (the codec codes any size with the model trained on 28 x 28).

Contenders: PNG (Pillow, optimize=True), WebP lossless (Pillow, lossless=True, quality=100,
method=6), JPEG XL lossless (`cjxl -d 0 -e 9`, Debian `libjxl-tools`; skipped with a note when
absent) and ours (every blob decoded back and compared bit for bit; encode and decode images/s,
`codec.CODING_BATCH` images per step call, as the codec runs; each blob still self-contained).
The model's NLL (bits/dim) is printed beside its codec's size.
"""

import argparse
import io
import shutil
import subprocess
import tempfile
import time

import numpy as np

from benchmarks.header import print_header
from pixel_keras.cli import RunError, positive_int, run_cli


def png_bytes(image):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG", optimize=True)
    return len(buffer.getvalue())


def webp_bytes(image):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
        buffer, format="WEBP", lossless=True, quality=100, method=6)
    return len(buffer.getvalue())


def jxl_bytes(image, folder):
    from PIL import Image

    source, target = f"{folder}/image.png", f"{folder}/image.jxl"
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(source)
    subprocess.run(["cjxl", "-d", "0", "-e", "9", "--quiet", source, target], check=True, capture_output=True)
    with open(target, "rb") as f:
        return len(f.read())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="run directory (its best.keras) or a .keras file")
    parser.add_argument("--num", type=positive_int, default=1000, help="first N Fashion-MNIST test images")
    parser.add_argument("--decode-num", type=positive_int, default=None, help="images decoded back (default: all)")
    parser.add_argument("--stitch", type=positive_int, default=1, help="K: code 28K x 28K images of K x K test images each")
    args = parser.parse_args(argv)

    import pixel_keras as pk
    from pixel_keras import codec
    from pixel_keras.data import load_dataset
    from pixel_keras.io import load_model_file

    model, config = load_model_file(args.model)
    k = args.stitch
    tiles = np.stack(list(load_dataset("fashion_mnist").test.take(args.num * k * k).as_numpy_iterator()))
    if len(tiles) < args.num * k * k:
        raise RunError(f"the test split has {len(tiles)} images, fewer than --num x --stitch**2")
    images = stitch(tiles, k)
    dims = images[0].size
    decode_num = args.num if args.decode_num is None else min(args.decode_num, args.num)
    what = "Fashion-MNIST test images"
    if k > 1:
        what = f"{images.shape[1]} x {images.shape[2]} images, each {k} x {k} {what}"
    print_header("benchmarks.compression", argv, f"{len(images)} {what} ({decode_num} decoded), model {args.model}")

    rows = [("PNG (optimize=True)", sum(map(png_bytes, images))),
            ("WebP lossless (method=6)", sum(map(webp_bytes, images)))]
    if shutil.which("cjxl"):
        with tempfile.TemporaryDirectory() as folder:
            rows.append(("JPEG XL lossless (cjxl -d 0 -e 9)", sum(jxl_bytes(image, folder) for image in images)))
    else:
        print("note: cjxl not found (apt-get install libjxl-tools): JPEG XL skipped")

    start = time.perf_counter()
    blobs = codec.compress(model, images.astype(np.int32), progress=True)
    encode_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decoded = codec.decompress(model, blobs[:decode_num], progress=True)
    decode_seconds = time.perf_counter() - start
    if not np.array_equal(decoded, images[:decode_num]):
        raise RunError("a decoded image differs from the original")
    rows.append(("pixel_keras.codec", sum(map(len, blobs))))
    scorer = model if k == 1 else model_at_size(model, config, images.shape[1:])
    nll = float(np.mean(pk.bits_per_dim(scorer, images.astype(np.int32)))) if scorer is not None else float("nan")

    reference = dict(rows).get("JPEG XL lossless (cjxl -d 0 -e 9)")
    print(f"{'method':<36} {'bits/dim':>8} {'bytes/image':>11} {'vs JPEG XL':>10}")
    for name, total in rows:
        bpd = 8.0 * total / (len(images) * dims)
        versus = f"{100.0 * (total / reference - 1):+.1f}%" if reference else "-"
        print(f"{name:<36} {bpd:>8.3f} {total / len(images):>11.1f} {versus:>10}")
    codec_bytes = sum(map(len, blobs)) / len(images)
    print(f"model NLL {nll:.3f} bits/dim; codec overhead {8.0 * codec_bytes / dims - nll:+.4f} bits/dim "
          f"({codec_bytes - nll * dims / 8:.2f} bytes/image)")
    decode_rate = decode_num / decode_seconds if decode_num else float("nan")
    print(f"encode {len(images) / encode_seconds:.2f} images/s, decode {decode_rate:.2f} images/s "
          f"(coding batch {codec.CODING_BATCH}, CPU)")
    print(f"encode {len(images) * dims / encode_seconds:.0f} sub-pixels/s, decode {decode_rate * dims:.0f} sub-pixels/s"
          f" ({encode_seconds:.1f} s and {decode_seconds:.1f} s)")
    return 0


def model_at_size(model, config, image_shape):
    """The model's architecture built for `image_shape` (from its run.json) with its weights: what
    scores the stitched images (the codec walks the trained weights at any size itself); None
    without a run.json."""
    import pixel_keras as pk
    from pixel_keras.archs import resolve_arch
    from pixel_keras.head_registry import resolve_head
    from pixel_keras.inspection import model_spec

    if config is None:
        return None
    # run.json holds --arch and --head as given: a name, or a user's package.module:NAME
    arch = resolve_arch(config["arch"])
    options = {"num_layers": config["layers"], "hidden": config["hidden"], "residual": config["residual"],
               "skip": config["skip"], "head": resolve_head(config["head"]), "num_mixtures": config["num_mixtures"],
               "dropout": config["dropout"]}
    if config.get("multiscale"):
        built = pk.build_multiscale_model(arch, image_shape, model_spec(model)[1], factor=config["multiscale"],
                                          **options)
    else:
        built = pk.build_model(arch, image_shape, model_spec(model)[1], **options)
    built.set_weights(model.get_weights())
    return built


def stitch(tiles, k):
    """(N, 28k, 28k, C) images from N k^2 tiles (28, 28, C), each k x k consecutive tiles in raster order."""
    if k == 1:
        return tiles
    count, height, width, channels = len(tiles) // (k * k), *tiles.shape[1:]
    grid = tiles[:count * k * k].reshape(count, k, k, height, width, channels)
    return np.ascontiguousarray(grid.transpose(0, 1, 3, 2, 4, 5).reshape(count, k * height, k * width, channels))


if __name__ == "__main__":
    run_cli(main)
