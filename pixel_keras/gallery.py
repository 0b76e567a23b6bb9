"""Image grids for galleries: TensorBoard image summaries and image files."""

import io
import math
import pathlib

import numpy as np
from PIL import Image

# Grids are scaled up (nearest neighbour) so that each image is at least this wide: a 28 x 28
# image becomes 112 x 112, large enough to judge by eye.
GALLERY_MIN_IMAGE_WIDTH = 112


def image_grid(images, num_levels, columns=None, border=1):
    """Tile integer images (N, H, W, C) into one uint8 image, values rescaled to 0 .. 255.

    Args:
        images: integer images with values in [0, num_levels).
        num_levels: number of pixel values (2 for binary images).
        columns: images per row (default: a near-square grid).
        border: pixels of mid-grey between images.
    """
    images = np.asarray(images)
    count, height, width, channels = images.shape
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / columns))
    scaled = np.round(images.astype(np.float64) * 255.0 / (num_levels - 1)).astype(np.uint8)
    grid = np.full((rows * (height + border) + border, columns * (width + border) + border, channels), 128, np.uint8)
    for index, image in enumerate(scaled):
        top = border + (index // columns) * (height + border)
        left = border + (index % columns) * (width + border)
        grid[top:top + height, left:left + width] = image
    return grid


def scale_up(grid, image_width):
    """Repeat every pixel of a uint8 grid so that an `image_width`-wide image is >= GALLERY_MIN_IMAGE_WIDTH."""
    factor = max(1, math.ceil(GALLERY_MIN_IMAGE_WIDTH / image_width))
    return np.repeat(np.repeat(grid, factor, axis=0), factor, axis=1)


def image_format(path):
    """The Pillow format that the suffix of `path` names (.png: PNG, .jpg: JPEG, .webp, ...); a
    ValueError naming the suffix where Pillow writes no format of that name."""
    Image.init()
    suffix = pathlib.Path(path).suffix.lower()
    name = Image.registered_extensions().get(suffix)
    if name is None or name not in Image.SAVE:
        problem = f"cannot write a {suffix} image" if suffix else "no suffix names the image format"
        raise ValueError(f"{path}: {problem}; name the format by the suffix (.png, .jpg, .webp, .bmp, .tif, ...)")
    return name


def write_image(path, image):
    """Write a uint8 image (H, W, C), C = 1 or 3, in the format its suffix names (`image_format`),
    whole or not at all (encoded in memory first)."""
    image = np.asarray(image, np.uint8)
    encoded = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(encoded, format=image_format(path))
    pathlib.Path(path).write_bytes(encoded.getvalue())


def write_png(path, image):
    """Write a uint8 image (H, W, C), C = 1 or 3, as a PNG file (Pillow: no TensorFlow needed)."""
    image = np.asarray(image, np.uint8)
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(str(path), format="PNG")


def heat_colours(values, top):
    """uint8 RGB (..., 3) of values >= 0 on a black -> red -> yellow -> white ramp, `top` and above
    white: one scale for every map of a gallery, so that the maps compare (no matplotlib needed)."""
    t = np.clip(np.asarray(values, np.float64) / max(float(top), 1e-12), 0.0, 1.0) * 3.0
    return np.round(255.0 * np.stack([np.clip(t, 0, 1), np.clip(t - 1, 0, 1), np.clip(t - 2, 0, 1)], -1)).astype(np.uint8)


def surprise_grid(images, num_levels, per_pixel_nats, columns=None, border=1):
    """Each image beside the heat map of its per-pixel surprise -log p(x_i | x_<i) (summed over
    channels, nats; one scale for all, white = the 99th percentile): a uint8 RGB grid of pairs.

    Args:
        images: integer images (N, H, W, C) with values in [0, num_levels).
        per_pixel_nats: log-probabilities (N, H, W, C) from `pk.log_prob(..., per_pixel=True)`.
        columns: pairs per row (default: a near-square grid).
    """
    images, log_probs = np.asarray(images), np.asarray(per_pixel_nats, np.float64)
    if log_probs.shape != images.shape:
        raise ValueError(f"Expected per-pixel log-probabilities of the images' shape {images.shape}. "
                         f"Received shape {log_probs.shape}.")
    surprise = -log_probs.sum(axis=-1)  # (N, H, W)
    top = np.percentile(surprise, 99) if surprise.size else 1.0
    shown = np.round(images.astype(np.float64) * 255.0 / (num_levels - 1)).astype(np.uint8)
    shown = np.repeat(shown, 3, axis=-1) if shown.shape[-1] == 1 else shown
    pairs = np.concatenate([shown, heat_colours(surprise, top)], axis=2)  # (N, H, 2W, 3)
    return image_grid(pairs, 256, columns, border)
