"""ggml's tensor types: id, name, block size and bytes per block.

Detection has to work where the native extension is not built, so this is a
small copy of ggml's ``type_traits`` table (``ggml/src/ggml.c``). A test checks
the names against ``sdrest._native.type_names()``, so the copy cannot drift
from the library it describes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "GGML_TYPES",
    "GGML_TYPES_BY_NAME",
    "GGMLType",
    "ggml_type",
    "is_quantized",
    "tensor_nbytes",
]


@dataclass(frozen=True, slots=True)
class GGMLType:
    """One ggml tensor type: its enum value, ggml's own name, and its block layout."""

    id: int
    name: str
    block_size: int
    type_size: int


def _table() -> dict[int, GGMLType]:
    qk_k = 256
    rows = [
        (0, "f32", 1, 4),
        (1, "f16", 1, 2),
        (2, "q4_0", 32, 2 + 16),
        (3, "q4_1", 32, 2 * 2 + 16),
        (6, "q5_0", 32, 2 + 4 + 16),
        (7, "q5_1", 32, 2 * 2 + 4 + 16),
        (8, "q8_0", 32, 2 + 32),
        (9, "q8_1", 32, 2 * 2 + 32),
        (10, "q2_K", qk_k, 2 * 2 + qk_k // 16 + qk_k // 4),
        (11, "q3_K", qk_k, 2 + qk_k // 4 + qk_k // 8 + 12),
        (12, "q4_K", qk_k, 2 * 2 + 12 + qk_k // 2),
        (13, "q5_K", qk_k, 2 * 2 + 12 + qk_k // 2 + qk_k // 8),
        (14, "q6_K", qk_k, 2 + qk_k // 16 + 3 * qk_k // 4),
        (15, "q8_K", qk_k, 4 + qk_k + qk_k // 16 * 2),
        (16, "iq2_xxs", qk_k, 2 + qk_k // 8 * 2),
        (17, "iq2_xs", qk_k, 2 + qk_k // 8 * 2 + qk_k // 32),
        (18, "iq3_xxs", qk_k, 2 + 3 * (qk_k // 8)),
        (19, "iq1_s", qk_k, 2 + qk_k // 8 + qk_k // 16),
        (20, "iq4_nl", 32, 2 + 16),
        (21, "iq3_s", qk_k, 2 + 13 * (qk_k // 32) + qk_k // 64),
        (22, "iq2_s", qk_k, 2 + qk_k // 4 + qk_k // 16),
        (23, "iq4_xs", qk_k, 2 + 2 + qk_k // 64 + qk_k // 2),
        (24, "i8", 1, 1),
        (25, "i16", 1, 2),
        (26, "i32", 1, 4),
        (27, "i64", 1, 8),
        (28, "f64", 1, 8),
        (29, "iq1_m", qk_k, qk_k // 8 + qk_k // 16 + qk_k // 32),
        (30, "bf16", 1, 2),
        (34, "tq1_0", qk_k, 2 + qk_k // 64 + (qk_k - 4 * qk_k // 64) // 5),
        (35, "tq2_0", qk_k, 2 + qk_k // 4),
        (39, "mxfp4", 32, 1 + 16),
        (40, "nvfp4", 64, 64 // 16 + 64 // 2),
    ]
    return {i: GGMLType(i, name, bs, ts) for i, name, bs, ts in rows}


GGML_TYPES: dict[int, GGMLType] = _table()
"""ggml type id -> type, for every type a GGUF file may hold (removed ids absent)."""

GGML_TYPES_BY_NAME: dict[str, GGMLType] = {t.name: t for t in GGML_TYPES.values()}
"""ggml type name (``"q8_0"``, ``"q4_K"``, ...) -> type."""

_NOT_QUANTIZED = frozenset({"f32", "f16", "bf16", "f64", "i8", "i16", "i32", "i64"})


def ggml_type(type_id: int) -> GGMLType | None:
    """The type with this ggml enum value, or None for an unknown or removed one."""
    return GGML_TYPES.get(type_id)


def tensor_nbytes(gtype: GGMLType, n_elements: int) -> int:
    """Bytes of a tensor of ``n_elements`` of this type (ggml's ``nbytes`` for contiguous data)."""
    return n_elements * gtype.type_size // gtype.block_size


def is_quantized(type_name: str) -> bool:
    """True for block-quantized ggml types (``q8_0``, ``q4_K``, ``iq2_xs``, ...)."""
    return type_name in GGML_TYPES_BY_NAME and type_name not in _NOT_QUANTIZED
