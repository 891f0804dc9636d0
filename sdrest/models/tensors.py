"""What a header tells: the tensor table of a model file, without its data.

Every reader (GGUF, safetensors, torch zip / legacy pickle, diffusers folder)
returns a :class:`TensorTable`. Shapes are kept twice: ``shape`` as the file
states it (outermost dimension first, the PyTorch order) and ``ne`` as
stable-diffusion.cpp's ``TensorStorage`` holds it (ggml order, padded to five
with ones), which is what its version detection tests.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_DIMS",
    "FormatError",
    "NotThisFormat",
    "TensorInfo",
    "TensorTable",
    "ne_from_shape",
]

MAX_DIMS = 5
"""stable-diffusion.cpp's ``SD_MAX_DIMS``."""


class FormatError(ValueError):
    """A file is not what its format says, or is damaged; the message says where."""


class NotThisFormat(FormatError):
    """The file is not in the format a reader handles (so the next format may be tried)."""


def ne_from_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """ggml's ``ne`` for a tensor of this (outermost-first) shape, padded to :data:`MAX_DIMS`."""
    ne = [1] * MAX_DIMS
    for i, dim in enumerate(reversed(shape[:MAX_DIMS])):
        ne[i] = dim
    return tuple(ne)


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One tensor as its file describes it.

    ``dtype`` is the stored type: a ggml type name (``"f16"``, ``"q8_0"``, ``"q4_K"``) or,
    for the few stored types ggml has no name for, ``"f8_e4m3"``, ``"f8_e5m2"``, ``"u8"``...
    ``ne`` is stable-diffusion.cpp's view of the shape (see the module docstring).
    ``offset`` is where the data starts in the file (None where unknown, e.g. inside a zip).
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    ne: tuple[int, ...]
    nbytes: int
    offset: int | None = None

    @property
    def n_elements(self) -> int:
        """Number of elements (product of the shape; 1 for a scalar)."""
        return math.prod(self.shape)


@dataclass(slots=True)
class TensorTable:
    """The tensor table and metadata read from one model file or folder.

    ``tensors`` keeps stable-diffusion.cpp's iteration order: file order for GGUF and
    torch pickles, byte-wise sorted names for safetensors (sd.cpp parses the JSON
    header into a sorted map). ``sdcpp_skipped`` names tensors sd.cpp's reader drops
    before detection (``U8`` tensors in safetensors). ``problems`` lists what makes
    sd.cpp refuse the file although its header is readable. ``bytes_read`` counts
    the bytes the reader took from disk.
    """

    format: str
    tensors: dict[str, TensorInfo] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    header_size: int = 0
    data_size: int = 0
    sdcpp_skipped: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bytes_read: int = 0

    def __iter__(self) -> Iterator[TensorInfo]:
        return iter(self.tensors.values())

    def __len__(self) -> int:
        return len(self.tensors)

    def __contains__(self, name: object) -> bool:
        return name in self.tensors

    def get(self, name: str) -> TensorInfo | None:
        """The tensor with this exact name, or None."""
        return self.tensors.get(name)

    def add(self, info: TensorInfo) -> None:
        """Add a tensor; a repeated name replaces the value and keeps its first position."""
        self.tensors[info.name] = info
