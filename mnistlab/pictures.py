"""Turn numpy arrays into pictures: tiles in a grid, grey levels and a diverging colour map.

Pages show grids of small images (examples, feature maps, filters) with these, so no
matplotlib figure has to be drawn per request.
"""

from __future__ import annotations

import numpy as np


def to_grey(values: np.ndarray) -> np.ndarray:
    """Scale values to 0..255 over the range that includes 0 and every value.

    Zero stays black for maps that are all positive (a ReLU output), so a map where a
    filter found nothing stays dark instead of being stretched into noise.
    """
    values = np.asarray(values, dtype=np.float32)
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if high - low < 1e-12:
        return np.zeros(values.shape, np.uint8)
    return np.round((values - low) / (high - low) * 255).astype(np.uint8)


def to_diverging(values: np.ndarray) -> np.ndarray:
    """RGB picture of signed values: negative blue, zero white, positive red (same scale both ways)."""
    values = np.asarray(values, dtype=np.float32)
    scale = float(np.abs(values).max(initial=0.0)) or 1.0
    normalised = np.clip(values / scale, -1.0, 1.0)
    positive, negative = np.clip(normalised, 0, 1), np.clip(-normalised, 0, 1)
    red = 1.0 - negative
    green = 1.0 - positive - negative
    blue = 1.0 - positive
    return np.round(np.stack([red, green, blue], axis=-1) * 255).astype(np.uint8)


def enlarge(picture: np.ndarray, scale: int) -> np.ndarray:
    """Enlarge by repeating pixels, so small images stay sharp on screen."""
    if scale <= 1:
        return picture
    return picture.repeat(scale, axis=0).repeat(scale, axis=1)


def tile(pictures: np.ndarray, columns: int, gap: int = 1, background: int = 128) -> np.ndarray:
    """Tile N equally sized pictures (N, H, W) or (N, H, W, 3) into one grid picture."""
    pictures = np.asarray(pictures)
    if len(pictures) == 0:
        raise ValueError("There is nothing to tile.")
    count, height, width = pictures.shape[:3]
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    shape = (rows * (height + gap) - gap, columns * (width + gap) - gap) + pictures.shape[3:]
    grid = np.full(shape, background, np.uint8)
    for index in range(count):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        grid[top : top + height, left : left + width] = pictures[index]
    return grid


def maps_grid(maps: np.ndarray, columns: int = 8, scale: int = 3, signed: bool = False) -> np.ndarray:
    """A grid of the channels of (H, W, C) maps, each scaled on its own, enlarged `scale` times."""
    channels = np.moveaxis(np.asarray(maps), -1, 0)
    pictures = np.stack([to_diverging(channel) if signed else to_grey(channel) for channel in channels])
    return tile(np.stack([enlarge(picture, scale) for picture in pictures]), columns, gap=2, background=200)


def fit_square(picture: np.ndarray, size: int, background: int = 0) -> np.ndarray:
    """Centre a picture on a square of `size` pixels, enlarged by whole pixels and keeping its shape.

    A thin stroke (a drawn "1" is 280 pixels tall and a dozen wide) stays thin instead of
    being stretched to the width it is shown at.
    """
    picture = np.asarray(picture)
    height, width = picture.shape[:2]
    scale = max(1, size // max(height, width))
    big = enlarge(picture, scale)
    if max(big.shape[:2]) > size:
        # Larger than the square: keep every n-th pixel so it fits, still keeping its shape.
        step = -(-max(big.shape[:2]) // size)
        big = big[::step, ::step]
    square = np.full((size, size) + picture.shape[2:], background, picture.dtype)
    top, left = (size - big.shape[0]) // 2, (size - big.shape[1]) // 2
    square[top : top + big.shape[0], left : left + big.shape[1]] = big
    return square


def heat_overlay(image01: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """An RGB picture of a 28x28 input in grey with a heat map over it (dark red to yellow where the heat is high)."""
    image01 = np.clip(np.asarray(image01, np.float32), 0.0, 1.0)
    heat = np.clip(np.asarray(heat, np.float32), 0.0, 1.0)
    grey = np.stack([image01 * 0.55] * 3, axis=-1)
    colour = np.stack([np.clip(heat * 2.0, 0.0, 1.0), np.clip(heat * 2.0 - 1.0, 0.0, 1.0), np.zeros_like(heat)], axis=-1)
    alpha = np.clip(heat * 1.3, 0.0, 0.9)[..., None]
    return (255 * (grey * (1 - alpha) + colour * alpha)).round().astype(np.uint8)
