"""Header-only model files, for tests and benchmarks: the header is written, the data is a hole.

``write_safetensors`` and ``write_gguf`` write a valid header for the given
tensors and extend the file to its full size with ``truncate`` (a sparse file:
no data blocks on disk), so a "20 GB model" costs a few KB. ``write_torch_zip``
writes a real (small) PyTorch zip checkpoint the way ``torch.save`` lays it out.
No torch is needed for any of them.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zipfile
from collections.abc import Iterable, Mapping
from typing import Any

from sdrest.models.ggml_types import GGML_TYPES_BY_NAME, tensor_nbytes

__all__ = ["Spec", "write_gguf", "write_safetensors", "write_torch_legacy", "write_torch_zip"]

Spec = tuple[str, tuple[int, ...], str]
"""(name, shape outermost-first, dtype): a dtype is a ggml type name or a safetensors dtype."""

_ST_DTYPES = {
    "f16": ("F16", 2),
    "bf16": ("BF16", 2),
    "f32": ("F32", 4),
    "f64": ("F64", 8),
    "i32": ("I32", 4),
    "i64": ("I64", 8),
    "u8": ("U8", 1),
    "f8_e4m3": ("F8_E4M3", 1),
    "f8_e5m2": ("F8_E5M2", 1),
}


def _specs(tensors: Iterable[Spec | tuple[str, tuple[int, ...]]], default: str) -> list[Spec]:
    out: list[Spec] = []
    for t in tensors:
        if len(t) == 2:
            out.append((t[0], tuple(t[1]), default))
        else:
            out.append((t[0], tuple(t[1]), t[2]))
    return out


def write_safetensors(
    path: str | os.PathLike[str],
    tensors: Iterable[Spec | tuple[str, tuple[int, ...]]],
    *,
    dtype: str = "f16",
    metadata: Mapping[str, str] | None = None,
    size: int | None = None,
) -> int:
    """Write a sparse safetensors file; returns its size. ``size`` pads the file further."""
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name, shape, dt in _specs(tensors, dtype):
        st_name, esize = _ST_DTYPES[dt]
        nbytes = math.prod(shape) * esize
        header[name] = {"dtype": st_name, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    total = 8 + len(raw) + offset
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        f.truncate(max(total, size or 0))
    return max(total, size or 0)


def _gguf_str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def _gguf_value(v: Any) -> bytes:
    if isinstance(v, bool):
        return struct.pack("<I?", 7, v)
    if isinstance(v, int):
        return struct.pack("<II", 4, v) if 0 <= v < 1 << 32 else struct.pack("<Iq", 11, v)
    if isinstance(v, float):
        return struct.pack("<If", 6, v)
    if isinstance(v, str):
        return struct.pack("<I", 8) + _gguf_str(v)
    if isinstance(v, list):
        if all(isinstance(x, str) for x in v):
            return struct.pack("<IIQ", 9, 8, len(v)) + b"".join(_gguf_str(x) for x in v)
        return struct.pack("<IIQ", 9, 5, len(v)) + b"".join(struct.pack("<i", x) for x in v)
    raise TypeError(f"unsupported GGUF metadata value {v!r}")


def write_gguf(
    path: str | os.PathLike[str],
    tensors: Iterable[Spec | tuple[str, tuple[int, ...]]],
    *,
    dtype: str = "f16",
    metadata: Mapping[str, Any] | None = None,
    alignment: int = 32,
    size: int | None = None,
) -> int:
    """Write a sparse GGUF v3 file (tensor offsets laid out as ggml requires); returns its size."""
    kv = dict(metadata or {})
    if alignment != 32:
        kv["general.alignment"] = alignment
    specs = _specs(tensors, dtype)
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(specs), len(kv)))
    for k, v in kv.items():
        out += _gguf_str(k) + _gguf_value(v)
    offset = 0
    for name, shape, dt in specs:
        gt = GGML_TYPES_BY_NAME[dt]
        ne = list(reversed(shape)) or [1]
        out += _gguf_str(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}q", *ne)
        out += struct.pack("<IQ", gt.id, offset)
        nbytes = tensor_nbytes(gt, math.prod(shape))
        offset += -(-nbytes // alignment) * alignment
    out += b"\0" * (-len(out) % alignment)
    total = len(out) + offset
    with open(path, "wb") as f:
        f.write(out)
        f.truncate(max(total, size or 0))
    return max(total, size or 0)


# --- torch pickles, written by hand (protocol 2, as torch.save does) ------------------------

_STORAGE_OF = {
    "f32": ("FloatStorage", 4),
    "f16": ("HalfStorage", 2),
    "bf16": ("BFloat16Storage", 2),
    "f64": ("DoubleStorage", 8),
    "i32": ("IntStorage", 4),
    "i64": ("LongStorage", 8),
}


def _pstr(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _pint(v: int) -> bytes:
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    if -(1 << 31) <= v < 1 << 31:
        return b"J" + struct.pack("<i", v)
    raw = v.to_bytes(8, "little", signed=True)
    return b"\x8a\x08" + raw


def _ptuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"


def state_dict_pickle(specs: list[Spec], *, wrap: str | None = "state_dict", extra: bytes = b"") -> bytes:
    """A protocol-2 pickle of ``{wrap: OrderedDict(name -> tensor)}`` as ``torch.save`` writes it.

    ``extra`` is raw pickle bytes inserted as one more top-level item (key, value), to test
    what the reader does with foreign objects.
    """
    body = bytearray()
    for i, (name, shape, dt) in enumerate(specs):
        storage, _ = _STORAGE_OF[dt]
        numel = math.prod(shape)
        stride = []
        acc = 1
        for d in reversed(shape):
            stride.append(acc)
            acc *= d
        stride.reverse()
        pid = _ptuple(
            [_pstr("storage"), b"ctorch\n" + storage.encode() + b"\n", _pstr(str(i)), _pstr("cpu"), _pint(numel)]
        )
        args = _ptuple(
            [
                pid + b"Q",
                _pint(0),
                _ptuple([_pint(d) for d in shape]),
                _ptuple([_pint(s) for s in stride]),
                b"\x89",
                b"ccollections\nOrderedDict\n)R",
            ]
        )
        body += _pstr(name) + b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"R"
    inner = b"ccollections\nOrderedDict\n)R(" + bytes(body) + b"u"
    if wrap is None:
        return b"\x80\x02" + inner + b"."
    return b"\x80\x02}(" + _pstr(wrap) + inner + extra + b"u."


def write_torch_zip(
    path: str | os.PathLike[str],
    tensors: Iterable[Spec | tuple[str, tuple[int, ...]]],
    *,
    dtype: str = "f32",
    wrap: str | None = "state_dict",
    extra: bytes = b"",
) -> int:
    """Write a PyTorch zip checkpoint (``archive/data.pkl`` + zeroed storages); returns its size."""
    specs = _specs(tensors, dtype)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", state_dict_pickle(specs, wrap=wrap, extra=extra))
        for i, (_name, shape, dt) in enumerate(specs):
            zf.writestr(f"archive/data/{i}", bytes(math.prod(shape) * _STORAGE_OF[dt][1]))
        zf.writestr("archive/version", "3\n")
    return os.path.getsize(path)


def write_torch_legacy(
    path: str | os.PathLike[str], tensors: Iterable[Spec | tuple[str, tuple[int, ...]]], *, dtype: str = "f32"
) -> int:
    """Write a legacy (pre-1.6, non-zip) PyTorch file with sparse storages; returns its size."""
    specs = _specs(tensors, dtype)
    magic = b"\x80\x02\x8a\x0a" + bytes([0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]) + b"."
    proto = b"\x80\x02M\xe9\x03."
    sys_info = b"\x80\x02}(" + _pstr("little_endian") + b"\x88u."
    state = state_dict_pickle(specs, wrap=None)
    keys = b"\x80\x02(" + b"".join(_pstr(str(i)) for i in range(len(specs))) + b"l."
    head = magic + proto + sys_info + state + keys
    # storages in sorted key order, each behind an 8-byte element count
    order = sorted(range(len(specs)), key=lambda i: str(i))
    total = len(head) + sum(8 + math.prod(specs[i][1]) * _STORAGE_OF[specs[i][2]][1] for i in order)
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(total)
    return total
