"""Image preprocessors sd.cpp provides (Canny edges for ControlNet)."""

from __future__ import annotations

from PIL import Image

from sdrest import _native
from sdrest.checks import check_float
from sdrest.images import ImageLike, to_array, to_pil


def preprocess_canny(image: ImageLike, *, high_threshold: float = 0.08, low_threshold: float = 0.08,
                     weak: float = 0.8, strong: float = 1.0, inverse: bool = False) -> Image.Image:
    """sd.cpp's Canny edge detector, with its CLI's default thresholds; returns a new image."""
    array = to_array(image, channels=3, argument="image")
    out = _native.preprocess_canny(array, check_float(high_threshold, "high_threshold", 0.0, 1.0),
                                   check_float(low_threshold, "low_threshold", 0.0, 1.0),
                                   check_float(weak, "weak", 0.0, 1.0), check_float(strong, "strong", 0.0, 1.0),
                                   bool(inverse))
    return to_pil(out)
