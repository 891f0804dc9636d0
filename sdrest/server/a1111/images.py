"""A1111's image handling around a generation: resize modes, the inpainting mask, and putting the result back.

A1111 resizes an img2img input to the requested size its own way (``resize_mode``), prepares the mask (inverted,
blurred), fills the masked area before sampling (``inpainting_fill``), may inpaint only the masked region at full
resolution (``inpaint_full_res``), and pastes the result over the original so the unmasked pixels stay the
original's. sd.cpp does the sampling; this module does the rest, in the API process, on images the parser has
already decoded and checked. Everything here works on Pillow images and is blocking: call it from a thread.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter, ImageOps, ImageStat, PngImagePlugin

__all__ = ["FILL_MODES", "RESIZE_MODES", "InpaintPlan", "encode_png", "fill_masked", "plan_img2img", "prepare_mask",
           "resize_image"]

#: A1111's ``resize_mode`` values: just resize, crop and resize, resize and fill, latent upscale (done here as a
#: plain resize: sd.cpp takes the image, not a latent)
RESIZE_MODES = (0, 1, 2, 3)
#: A1111's ``inpainting_fill`` values: fill (from the surroundings), original, latent noise, latent nothing (the
#: last two in pixel space here: noise, or mid grey, where the mask is)
FILL_MODES = (0, 1, 2, 3)
_LANCZOS = Image.Resampling.LANCZOS


def _scaled(image: Image.Image, width: int, height: int) -> Image.Image:
    size = (max(1, width), max(1, height))
    return image if image.size == size else image.resize(size, _LANCZOS)


def resize_image(mode: int, image: Image.Image, width: int, height: int) -> Image.Image:
    """``image`` brought to ``width`` x ``height`` as A1111's ``resize_mode`` says: 0 (or 3) stretch; 1 scale to
    cover and crop the centre; 2 scale to fit, centre, and fill the bands with the stretched edge rows or
    columns."""
    if mode in (0, 3):
        return _scaled(image, width, height)
    ratio, source = width / height, image.width / image.height
    cover = mode == 1
    if (ratio > source) == cover:  # the width decides
        inner = (width, max(1, image.height * width // image.width))
    else:
        inner = (max(1, image.width * height // image.height), height)
    resized = _scaled(image, *inner)
    out = Image.new(image.mode, (width, height))
    left, top = width // 2 - inner[0] // 2, height // 2 - inner[1] // 2
    out.paste(resized, (left, top))
    if mode == 2:
        if inner[1] < height and top > 0:
            out.paste(resized.crop((0, 0, inner[0], 1)).resize((width, top)), (0, 0))
            bottom = height - (top + inner[1])
            if bottom > 0:
                out.paste(resized.crop((0, inner[1] - 1, inner[0], inner[1])).resize((width, bottom)),
                          (0, top + inner[1]))
        elif inner[0] < width and left > 0:
            out.paste(resized.crop((0, 0, 1, inner[1])).resize((left, height)), (0, 0))
            right = width - (left + inner[0])
            if right > 0:
                out.paste(resized.crop((inner[0] - 1, 0, inner[0], inner[1])).resize((right, height)),
                          (left + inner[0], 0))
    return out


def prepare_mask(mask: Image.Image, *, invert: bool, blur: int) -> Image.Image:
    """The mask as A1111 uses it: grey levels (white: redraw), inverted when asked, blurred by ``blur`` pixels."""
    out = mask.convert("L")
    if invert:
        out = ImageOps.invert(out)
    if blur > 0:
        out = out.filter(ImageFilter.GaussianBlur(blur))
    return out


def _surroundings(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The masked area filled with the colours around it: the kept pixels (premultiplied by how much they are
    kept) blurred at falling radii, each pass laid over the last, so a large hole gets smooth colour and its rim
    the nearby detail. Starts from the kept pixels' mean colour, so no hole stays black."""
    kept = image.convert("RGBA")
    kept.putalpha(ImageOps.invert(mask))
    premultiplied = kept.convert("RGBa")
    mean = ImageStat.Stat(premultiplied).mean
    alpha = mean[3] / 255.0
    base = tuple(round(c / alpha) if alpha > 1e-6 else 128 for c in mean[:3])
    out = Image.new("RGBA", image.size, (*base, 255))
    for radius, repeats in ((256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)):
        layer = (premultiplied.filter(ImageFilter.GaussianBlur(radius)) if radius else premultiplied).convert("RGBA")
        for _ in range(repeats):
            out.alpha_composite(layer)
    return out.convert("RGB")


def fill_masked(image: Image.Image, mask: Image.Image, mode: int, seed: int) -> Image.Image:
    """``image`` with its masked area prepared for sampling as A1111's ``inpainting_fill`` says: 0 colours from the
    surroundings, 1 unchanged, 2 noise (from ``seed``), 3 mid grey."""
    if mode == 1:
        return image
    if mode == 0:
        fill = _surroundings(image, mask)
    elif mode == 2:
        noise = np.random.default_rng(seed).integers(0, 256, size=(image.height, image.width, 3), dtype=np.uint8)
        fill = Image.fromarray(noise, "RGB")
    else:
        fill = Image.new("RGB", image.size, (128, 128, 128))
    hard = mask.point(lambda v: 255 if v > 127 else 0)
    return Image.composite(fill, image.convert("RGB"), hard)


def _crop_region(mask: Image.Image, padding: int) -> tuple[int, int, int, int] | None:
    """The box around the mask's non-zero pixels, grown by ``padding`` and kept inside the image; None when the
    mask is empty."""
    box = mask.getbbox()
    if box is None:
        return None
    x1, y1, x2, y2 = box
    return max(x1 - padding, 0), max(y1 - padding, 0), min(x2 + padding, mask.width), min(y2 + padding, mask.height)


def _to_aspect(box: tuple[int, int, int, int], width: int, height: int, limit_w: int,
               limit_h: int) -> tuple[int, int, int, int]:
    """``box`` grown (inside ``limit_w`` x ``limit_h``) to the aspect ratio of ``width`` x ``height``."""
    x1, y1, x2, y2 = box
    ratio = width / height
    if (x2 - x1) / (y2 - y1) < ratio:  # too narrow: widen
        want = min(round((y2 - y1) * ratio), limit_w)
        x1 -= (want - (x2 - x1)) // 2
        x1 = max(0, min(x1, limit_w - want))
        x2 = x1 + want
    else:  # too flat: heighten
        want = min(round((x2 - x1) / ratio), limit_h)
        y1 -= (want - (y2 - y1)) // 2
        y1 = max(0, min(y1, limit_h - want))
        y2 = y1 + want
    return x1, y1, x2, y2


@dataclass
class InpaintPlan:
    """What an A1111 img2img request becomes: the image and mask the job gets (``width`` x ``height``), and how
    its result is put back (:meth:`finish`): over ``original`` through ``overlay_mask``, after being pasted at
    ``region`` (inpainting only the masked region at full resolution)."""

    image: Image.Image
    mask: Image.Image | None
    original: Image.Image | None = None
    overlay_mask: Image.Image | None = None
    region: tuple[int, int, int, int] | None = None

    def finish(self, result: Image.Image) -> Image.Image:
        """The image A1111 answers with for the job's ``result``: unchanged without a mask; else pasted into the
        original at the region (full-resolution inpainting) and laid over the original's unmasked pixels."""
        if self.original is None or self.overlay_mask is None:
            return result
        base = result.convert("RGB")
        if self.region is not None:
            x1, y1, x2, y2 = self.region
            canvas = self.original.copy()
            canvas.paste(resize_image(1, base, x2 - x1, y2 - y1), (x1, y1))
            base = canvas
        return Image.composite(base, self.original, self.overlay_mask)


def plan_img2img(image: Image.Image, mask: Image.Image | None, *, width: int, height: int, resize_mode: int,
                 mask_blur: int, invert: bool, fill: int, full_res: bool, padding: int, seed: int) -> InpaintPlan:
    """The job's inputs for an A1111 img2img request, and how to finish its result (see :class:`InpaintPlan`)."""
    picture = image.convert("RGB")
    if mask is None:
        return InpaintPlan(resize_image(resize_mode, picture, width, height), None)
    prepared = prepare_mask(mask, invert=invert, blur=mask_blur)
    if prepared.size != picture.size:
        prepared = prepared.resize(picture.size, _LANCZOS)
    region = _crop_region(prepared, padding) if full_res else None
    if region is not None:
        region = _to_aspect(region, width, height, picture.width, picture.height)
        job_mask = resize_image(2, prepared.crop(region), width, height)
        job_image = resize_image(2, picture.crop(region), width, height)
        original, overlay = picture, prepared
    else:
        job_mask = resize_image(resize_mode, prepared, width, height)
        job_image = resize_image(resize_mode, picture, width, height)
        original, overlay = job_image, job_mask.point(lambda v: min(255, v * 2))
    job_image = fill_masked(job_image, job_mask, fill, seed)
    return InpaintPlan(job_image, job_mask, original, overlay, region)


def encode_png(image: Image.Image, parameters: str | None = None) -> str:
    """``image`` as raw base64 PNG (A1111 sends no data: prefix), with its ``parameters`` text when given."""
    info = None
    if parameters:
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", parameters)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode()
