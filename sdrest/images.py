"""Images in and out: PIL images or numpy arrays, to the (H, W, C) uint8 arrays the native layer takes."""

from __future__ import annotations

from typing import Union

import numpy as np
from PIL import Image

ImageLike = Union[Image.Image, np.ndarray]


def to_array(image: ImageLike, *, channels: int, argument: str) -> np.ndarray:
    """A C-contiguous uint8 array (H, W, C), or (H, W) for ``channels=1``.

    PIL images are converted to RGB (or L); arrays must already be uint8 with the
    right number of channels. ``TypeError``/``ValueError`` name ``argument``.
    """
    if isinstance(image, Image.Image):
        mode = "L" if channels == 1 else "RGB"
        array = np.asarray(image.convert(mode) if image.mode != mode else image)
    elif isinstance(image, np.ndarray):
        array = image
    else:
        raise TypeError(f"{argument}: expected a PIL image or a numpy array, got {type(image).__name__}")
    if array.dtype != np.uint8:
        raise TypeError(f"{argument}: expected uint8 pixels, got {array.dtype}")
    if channels == 1 and array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    want_ndim = 2 if channels == 1 else 3
    if array.ndim != want_ndim or (channels != 1 and array.shape[2] != channels):
        want = "H x W" if channels == 1 else f"H x W x {channels}"
        raise ValueError(f"{argument}: expected {want} pixels, got shape {tuple(array.shape)}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{argument}: the image is empty")
    return np.ascontiguousarray(array)


def size_of(array: np.ndarray) -> tuple[int, int]:
    """(width, height) of an (H, W[, C]) array."""
    return int(array.shape[1]), int(array.shape[0])


def to_pil(array: np.ndarray) -> Image.Image:
    """A PIL image of an (H, W, C) uint8 array."""
    if array.ndim == 3 and array.shape[2] == 1:
        return Image.fromarray(array[:, :, 0], mode="L")
    return Image.fromarray(array)
