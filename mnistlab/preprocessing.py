"""Turn a drawing or a photo into the 28x28 input the network expects, as MNIST was made.

The MNIST digits were fitted into a 20x20 box keeping their aspect ratio, then
placed in a 28x28 field so that their centre of mass sits at the centre. Shrinking
a whole 280x280 canvas to 28x28 instead makes a digit drawn small or off-centre
look nothing like the training data. The steps here are:

1. ink map: grey levels with the ink bright and the background dark; a dark digit
   on light paper is detected (from the border of the image) and inverted; what is
   ink and what is paper is decided by the image's own statistics (Otsu's threshold),
   so the shading of a photographed sheet is not taken for ink;
2. crop to the ink's bounding box;
3. fit into 20x20, keeping the aspect ratio, with anti-aliasing;
4. centre in 28x28 by the centre of mass.

The page, the command line and the benchmark all use `preprocess`; it works on
numpy arrays only (no TensorFlow).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnistlab.i18n import N_, _

FIELD = 28
BOX = 20
# Below this contrast between ink and background an image counts as empty.
EMPTY_CONTRAST = 0.15
# After stretching the ink to 0..1, values under this are background noise.
NOISE_FLOOR = 0.2
# Ink covering fewer pixels than this is a stray dot, not a digit.
MIN_INK_PIXELS = 3
# A PNG is decoded whole, so its size is capped; a JPEG is decoded straight at a reduced
# scale (up to 8 times smaller each way), so the cap applies to that reduced size.
MAX_UPLOAD_PIXELS = 40_000_000
# Files read from disk (the command line) may be this large; the web app caps uploads itself.
MAX_FILE_BYTES = 512 * 1024 * 1024
WORKING_SIZE = 1000
# Pillow refuses images over about 180 megapixels outright, before a JPEG could be decoded at
# an eighth of its size. MNIST Lab checks sizes itself (above), so it lets Pillow open headers
# up to a gigapixel; what is then decoded stays under MAX_UPLOAD_PIXELS.
Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, 1_000_000_000 // 2)


@dataclass(frozen=True)
class Step:
    """One picture of the pipeline, for "what the network sees"."""

    title: str
    image: np.ndarray  # float32, 0 (background) to 1 (ink)

    @property
    def shape_text(self) -> str:
        """Width x height, as image sizes are written (the array's shape is height, width)."""
        return f"{self.image.shape[1]}x{self.image.shape[0]}"


@dataclass(frozen=True, eq=False)
class Preprocessed:
    """The 28x28 input (0..1, ink bright) and the steps that made it."""

    image: np.ndarray
    is_empty: bool
    inverted: bool
    steps: tuple[Step, ...]


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.float32)


def _as_grey(image: np.ndarray) -> np.ndarray:
    """Grey levels 0..1 from a grey, RGB or RGBA array (uint8, or floats in 0..1 or 0..255)."""
    array = np.asarray(image)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValueError(f"Expected a grey, RGB or RGBA image, got an array of shape {array.shape}.")
    if array.size == 0 or min(array.shape[:2]) < 1:
        raise ValueError("The image has no pixels.")
    values = array.astype(np.float32)
    if array.dtype == np.uint8 or values.max(initial=0.0) > 1.0:
        values /= 255.0
    if values.ndim == 2:
        return values
    if values.shape[2] == 1:
        return values[..., 0]
    grey = _luminance(values[..., :3])
    if values.shape[2] == 3:
        return grey
    alpha = values[..., 3]
    if alpha.min() >= 0.99:
        return grey
    # With transparency, lay the image on the colour that makes its strokes visible:
    # anything with light strokes goes on black (white ink on a transparent canvas),
    # a drawing made only of dark pixels goes on white (black ink on transparency).
    opaque = alpha > 0.5
    light_fraction = float((grey[opaque] > 0.5).mean()) if opaque.any() else 1.0
    background = 0.0 if light_fraction > 0.01 else 1.0
    return grey * alpha + background * (1.0 - alpha)


def _border(values: np.ndarray) -> np.ndarray:
    height, width = values.shape
    thickness = max(1, min(height, width) // 20)
    return np.concatenate([values[:thickness].ravel(), values[-thickness:].ravel(), values[:, :thickness].ravel(), values[:, -thickness:].ravel()])


def ink_map(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """Ink bright (up to 1) on a dark background (0), and whether the image was inverted."""
    grey = _as_grey(image)
    background = float(np.median(_border(grey)))
    inverted = background > 0.5
    if inverted:
        grey = 1.0 - grey
        background = 1.0 - background
    ink = grey - background
    peak = float(ink.max())
    if peak < EMPTY_CONTRAST:
        return np.zeros_like(grey), inverted
    ink = np.clip(ink / peak, 0.0, 1.0)
    # Paper in a photo is rarely even: a shadow or a fold is a little darker than the rest, never as dark as the pen.
    # Among the pixels darker than the paper's border, Otsu's threshold splits the grey levels into their two groups,
    # shaded paper and ink; the faint edge of a stroke (half the threshold) is kept, anything fainter is paper.
    candidates = ink[ink >= NOISE_FLOOR]
    floor = max(NOISE_FLOOR, 0.5 * otsu_threshold(candidates)) if candidates.size else NOISE_FLOOR
    ink[ink < floor] = 0.0
    return ink.astype(np.float32), inverted


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of values in 0..1: the level that best splits them into two groups (the most variance between)."""
    histogram, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    weights = histogram.astype(np.float64)
    if weights.sum() == 0:
        return 0.0
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(weights)
    above = weights.sum() - below
    mean_below = np.cumsum(weights * centres) / np.maximum(below, 1e-12)
    mean_above = ((weights * centres).sum() - np.cumsum(weights * centres)) / np.maximum(above, 1e-12)
    between = below * above * (mean_below - mean_above) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def _resize(values: np.ndarray, height: int, width: int) -> np.ndarray:
    resized = Image.fromarray(values.astype(np.float32), mode="F").resize((width, height), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def centre_of_mass(values: np.ndarray) -> tuple[float, float]:
    """(row, column) of the centre of mass, in pixel units where pixel i spans [i, i+1)."""
    total = float(values.sum())
    rows = np.arange(values.shape[0], dtype=np.float64) + 0.5
    columns = np.arange(values.shape[1], dtype=np.float64) + 0.5
    return float(values.sum(axis=1) @ rows / total), float(values.sum(axis=0) @ columns / total)


def preprocess(image: np.ndarray) -> Preprocessed:
    """Make the 28x28 network input from an image of any size, as MNIST itself was made."""
    ink, inverted = ink_map(image)
    mask = ink > 0
    steps = [Step(N_("Your image (ink bright)"), ink)]
    if int(mask.sum()) < MIN_INK_PIXELS:
        return Preprocessed(np.zeros((FIELD, FIELD), np.float32), True, inverted, tuple(steps))

    # The box is the ink's, by Otsu's threshold: faint shading near a photo's edge does not stretch it.
    core = ink >= max(NOISE_FLOOR, otsu_threshold(ink[mask]))
    box = core if int(core.sum()) >= MIN_INK_PIXELS else mask
    rows = np.flatnonzero(box.any(axis=1))
    columns = np.flatnonzero(box.any(axis=0))
    cropped = ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    steps.append(Step(N_("Cropped to the ink"), cropped))

    height, width = cropped.shape
    scale = BOX / max(height, width)
    fitted = _resize(cropped, max(1, round(height * scale)), max(1, round(width * scale)))
    if fitted.max() > 0:
        # Thin pens fade when shrunk; MNIST strokes are fully bright in their middle.
        fitted = fitted / fitted.max()
    steps.append(Step(N_("Fitted into 20x20"), fitted))

    centre_row, centre_column = centre_of_mass(fitted)
    top = int(np.clip(round(FIELD / 2 - centre_row), 0, FIELD - fitted.shape[0]))
    left = int(np.clip(round(FIELD / 2 - centre_column), 0, FIELD - fitted.shape[1]))
    field = np.zeros((FIELD, FIELD), np.float32)
    field[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted
    steps.append(Step(N_("Centred in 28x28"), field))
    return Preprocessed(field, False, inverted, tuple(steps))


def plain_resize(image: np.ndarray) -> np.ndarray:
    """What most drawing apps do: shrink the whole image to 28x28 (for comparison only)."""
    ink, _ = ink_map(image)
    return _resize(ink, FIELD, FIELD)


def load_image_bytes(data: bytes, max_pixels: int = MAX_UPLOAD_PIXELS) -> np.ndarray:
    """Decode a PNG or JPEG upload into a grey or RGBA uint8 array; bad files raise ValueError."""
    if not data:
        raise ValueError(_("The file is empty."))
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.format not in ("PNG", "JPEG", "MPO"):
                raise ValueError(_("Please upload a PNG or JPEG image (this file is {kind}).").format(kind=opened.format or _("unknown")))
            if opened.format in ("JPEG", "MPO"):
                # Decode big photos at a reduced size straight away.
                opened.draft("RGB", (WORKING_SIZE, WORKING_SIZE))
            width, height = opened.size
            if width * height > max_pixels:
                raise ValueError(
                    _("The image is {width}x{height} pixels, too large to process; use one under {megapixels} megapixels.").format(
                        width=width, height=height, megapixels=max_pixels // 1_000_000
                    )
                )
            picture = ImageOps.exif_transpose(opened)
            picture.thumbnail((WORKING_SIZE, WORKING_SIZE))
            has_alpha = picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info
            picture = picture.convert("RGBA" if has_alpha else "L")
            return np.asarray(picture, dtype=np.uint8).copy()
    except UnidentifiedImageError:
        raise ValueError(_("This file is not an image MNIST Lab can read; upload a PNG or JPEG.")) from None
    except Image.DecompressionBombError as error:
        raise ValueError(_("The image is too large to process ({error}).").format(error=error)) from None
    except (OSError, SyntaxError, EOFError) as error:
        raise ValueError(_("The image file is broken or truncated ({error}).").format(error=error)) from None


def load_image_file(path, max_bytes: int | None = None) -> np.ndarray:
    """Read a PNG or JPEG file from disk (see load_image_bytes); files over `max_bytes` are refused, never cut short."""
    max_bytes = MAX_FILE_BYTES if max_bytes is None else max_bytes
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror}).") from None
    if len(data) > max_bytes:
        raise ValueError(f"{path}: the file is larger than {max_bytes // (1024 * 1024)} MB; use a smaller image.")
    try:
        return load_image_bytes(data)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
