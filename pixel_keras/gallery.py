"""Image grids for galleries: TensorBoard image summaries and PNG files."""

import math

import numpy as np
from PIL import Image


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


def write_png(path, image):
    """Write a uint8 image (H, W, C), C = 1 or 3, as a PNG file (Pillow: no TensorFlow needed)."""
    image = np.asarray(image, np.uint8)
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(str(path), format="PNG")
