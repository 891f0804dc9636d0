"""``Upscaler``: an ESRGAN model that enlarges images."""

from __future__ import annotations

from typing import Any, Optional

from PIL import Image

from sdrest import _native
from sdrest.checks import PathLike, check_int, check_path
from sdrest.images import ImageLike, to_array, to_pil
from sdrest.logs import sync_log_threshold
from sdrest.progress import ProgressCallback, progress_adapter
from sdrest.threads import available_physical_cores

#: Largest output side accepted.
MAX_OUTPUT_SIDE = 32768


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

    def upscale(self, image: ImageLike, factor: Optional[int] = None, *,
                progress: Optional[ProgressCallback] = None) -> Image.Image:
        """Enlarge ``image`` by ``factor`` (default: the model's own); returns a PIL image."""
        ctx = self._context()
        array = to_array(image, channels=3, argument="image")
        scale = ctx.factor if factor is None else check_int(factor, "factor", 1, 16)
        if max(array.shape[:2]) * scale > MAX_OUTPUT_SIDE:
            raise ValueError(f"factor: the result would exceed {MAX_OUTPUT_SIDE} pixels a side")
        sync_log_threshold()
        return to_pil(ctx.upscale(array, scale, progress_adapter(progress, None, lambda: None)))

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
