"""Image files as a viewer shows them (EXIF orientation, palettes, 16-bit grey): what a folder's
training images are made of and what the lossless codec codes exactly. PIL is imported only where
an image is read."""

import numpy as np

from pixel_keras.data.common import DataError


def _to_8_bit(image):
    """16-bit grayscale (PIL modes I;16*, and I as PNG opens it) scaled to 8 bits, value * 255 / 65535
    rounded (PIL's own conversion clips it instead: mid-grey would become 255); other modes as they are."""
    from PIL import Image

    if not (image.mode.startswith("I;16") or image.mode == "I"):
        return image
    values = np.clip(np.asarray(image, np.float64), 0, 65535)
    return Image.fromarray(np.round(values * 255 / 65535).astype(np.uint8), mode="L")


# PIL modes whose pixels `viewed_image(..., exact=True)` gives as shown: every value kept.
EXACT_MODES = ("1", "L", "P", "RGB", "LA", "PA", "RGBA")


def viewed_image(image, channels, exact=False):
    """A PIL `image` as a viewer shows it, upright per its EXIF orientation, in mode L (`channels`
    1) or RGB (3): palette and 1-bit images become the colours they stand for (not their indices).

    exact=False (training data): 16-bit grey scaled to 8 bits, colour made grey by luminance,
    transparency dropped. exact=True (the lossless codec): every shown value kept, or a DataError
    for what cannot be kept: 16-bit or float values, transparency in use (alpha would be lost),
    colour given for one channel, modes other than `EXACT_MODES` (CMYK, ...).
    """
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image)
    if not exact:
        return _to_8_bit(image).convert("L" if channels == 1 else "RGB")
    if image.mode not in EXACT_MODES:
        kind = {"I": "a 16-bit (or 32-bit) image", "F": "a floating-point image"}.get(image.mode[0], "an image")
        raise DataError(f"is {kind} in PIL mode {image.mode}; only 8-bit grey, RGB, palette and 1-bit images are "
                        "coded exactly: convert it to 8-bit L or RGB first (a conversion that may lose information)")
    rgba = np.asarray(image.convert("RGBA"))  # P, 1, L, LA, PA, RGB: the shown colours; tRNS made alpha
    transparent = int(np.count_nonzero(rgba[..., 3] != 255))
    if transparent:
        raise DataError(f"has transparency ({transparent} pixels with alpha < 255), which would be lost: "
                        "flatten it onto a background first")
    if channels == 3:
        return Image.fromarray(np.ascontiguousarray(rgba[..., :3]), mode="RGB")
    if not ((rgba[..., 0] == rgba[..., 1]) & (rgba[..., 0] == rgba[..., 2])).all():
        raise DataError("is a colour image, and the model codes greyscale (1 channel) images: convert it to grey "
                        "first (a conversion that loses the colours)")
    return Image.fromarray(np.ascontiguousarray(rgba[..., 0]), mode="L")


def load_image_file(path, image_size, channels):
    """One image file as uint8 (image_size, image_size, channels): upright per its EXIF orientation,
    16-bit scaled to 8 bits, centre-cropped to a square and resized.

    Raises:
        DataError: naming the file, when it cannot be read as an image.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = viewed_image(image, channels)
            width, height = image.size
            side = min(width, height)
            left, top = (width - side) // 2, (height - side) // 2
            image = image.crop((left, top, left + side, top + side)).resize((image_size, image_size), Image.BILINEAR)
            array = np.asarray(image, np.uint8)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        raise DataError(f"Cannot read image {path}: {error}") from None
    return array.reshape(image_size, image_size, channels)
