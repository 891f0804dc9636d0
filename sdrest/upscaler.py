"""``Upscaler``: an ESRGAN model that enlarges images by an exact factor.

sd.cpp's upscaler always enlarges by the model's own scale (4 for an x4 model).
Like AUTOMATIC1111, :meth:`Upscaler.upscale` runs the model as many times as the
factor needs, then resizes to the exact size with Lanczos; :func:`plan_upscale`
says what it will do, and the result carries it in ``image.info["parameters"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from PIL import Image

from sdrest import _native
from sdrest.checks import PathLike, check_float, check_int, check_path
from sdrest.images import ImageLike, size_of, to_array, to_pil
from sdrest.logs import sync_log_threshold
from sdrest.progress import ProgressCallback, progress_adapter
from sdrest.threads import available_physical_cores

#: Largest side accepted, for the result and for what the model passes make on the way.
MAX_OUTPUT_SIDE = 32768
#: Largest factor accepted.
MAX_FACTOR = 16


@dataclass(frozen=True)
class UpscalePlan:
    """What an upscale does: ``passes`` runs of a ``model_scale`` model, then a Lanczos resize.

    ``model_size`` is the size the passes make, ``size`` the exact result
    (``source_size`` times ``factor``, rounded); ``resized`` tells whether the
    Lanczos step changes anything.
    """

    factor: float
    model_scale: int
    passes: int
    source_size: tuple[int, int]
    model_size: tuple[int, int]
    size: tuple[int, int]

    @property
    def resized(self) -> bool:
        """True when the model's output is resized to reach ``size``."""
        return self.model_size != self.size

    def parameters(self, model_name: str) -> str:
        """What was done, as A1111 ``Key: value`` fields (its extras tab's keys first) on one line."""
        factor = int(self.factor) if float(self.factor).is_integer() else self.factor
        fields = [("Postprocess upscale by", factor), ("Postprocess upscaler", model_name),
                  ("Upscaler scale", self.model_scale), ("Upscaler passes", self.passes)]
        if self.resized:
            fields.append(("Resize", f"Lanczos from {self.model_size[0]}x{self.model_size[1]}"))
        return ", ".join(f"{key}: {value}" for key, value in fields)


def plan_upscale(source_size: tuple[int, int], factor: float, model_scale: int) -> UpscalePlan:
    """The passes and the exact size for enlarging ``source_size`` (width, height) by ``factor``.

    As AUTOMATIC1111 does: the fewest model passes (at least one) whose scale reaches
    ``factor``, then Lanczos to ``round(side * factor)``. A 1x model runs once.
    ``ValueError`` when a side would exceed :data:`MAX_OUTPUT_SIDE`.
    """
    factor = check_float(factor, "factor", 1.0, MAX_FACTOR)
    scale = check_int(model_scale, "model_scale", 1, 64)
    width, height = source_size
    passes = 1
    while scale > 1 and scale ** passes < factor:
        passes += 1
    total = scale ** passes
    model_size = (width * total, height * total)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    if max(*size, *model_size) > MAX_OUTPUT_SIDE:
        raise ValueError(f"factor: upscaling {width}x{height} by {factor:g} ({passes} pass(es) of an x{scale} model, "
                         f"{model_size[0]}x{model_size[1]}) would exceed {MAX_OUTPUT_SIDE} pixels a side")
    return UpscalePlan(factor, scale, passes, (width, height), model_size, size)


class Upscaler:
    """An ESRGAN upscaler (sd.cpp's ``upscaler_ctx_t``).

    ``tile_size`` is sd.cpp's tile (128 by default, as its CLI); ``n_threads=None``
    uses the physical cores available.
    """

    def __init__(self, path: PathLike, *, n_threads: Optional[int] = None, tile_size: int = 128,
                 offload_params_to_cpu: bool = False, direct: bool = False) -> None:
        self._ctx: Optional[_native.Upscaler] = None
        self.path = check_path(path, "path")
        threads = available_physical_cores() if n_threads is None else check_int(n_threads, "n_threads", 1, 4096)
        tile = check_int(tile_size, "tile_size", 16, 4096)
        sync_log_threshold()
        self._ctx = _native.Upscaler(self.path, bool(offload_params_to_cpu), bool(direct), threads, tile)

    @property
    def factor(self) -> int:
        """The model's native scale (4 for an x4 ESRGAN)."""
        return self._context().factor

    @property
    def name(self) -> str:
        """The model's file name without its extension (what the infotext calls it)."""
        return Path(self.path).stem

    def plan(self, size: tuple[int, int], factor: Optional[float] = None) -> UpscalePlan:
        """What :meth:`upscale` would do to an image of ``size`` (width, height); see :func:`plan_upscale`."""
        return plan_upscale(size, self.factor if factor is None else factor, self.factor)

    def upscale(self, image: ImageLike, factor: Optional[float] = None, *,
                progress: Optional[ProgressCallback] = None) -> Image.Image:
        """Enlarge ``image`` by exactly ``factor`` (default: the model's own scale); returns a PIL image.

        The model runs as many times as ``factor`` needs and the result is resized
        to ``round(side * factor)`` with Lanczos. ``image.info["parameters"]`` of the
        result says what was done (factor, model, passes, resize), appended to the
        input's own ``parameters`` when it has them (a generated image keeps how it
        was made). ``progress`` receives ``upscaling`` events, one series per pass.
        """
        ctx = self._context()
        array = to_array(image, channels=3, argument="image")
        plan = self.plan(size_of(array), factor)
        progress_fn = progress_adapter(progress, None, lambda: None)
        sync_log_threshold()
        for _ in range(plan.passes):
            array = ctx.upscale(array, plan.model_scale, progress_fn)
        result = to_pil(array)
        if plan.resized:
            result = result.resize(plan.size, Image.Resampling.LANCZOS)
        done = plan.parameters(self.name)
        source = image.info.get("parameters") if isinstance(image, Image.Image) else None
        result.info["parameters"] = f"{source.rstrip()}, {done}" if isinstance(source, str) and source.strip() else done
        return result

    def _context(self) -> _native.Upscaler:
        if self._ctx is None:
            raise ValueError("this Upscaler is closed")
        return self._ctx

    def close(self) -> None:
        """Free the native upscaler. Safe to call twice."""
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            ctx.close()

    def __enter__(self) -> "Upscaler":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
