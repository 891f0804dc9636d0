"""A safetensors header reader: the JSON header (and ``__metadata__``), never the data.

Mirrors stable-diffusion.cpp's ``safetensors_io.cpp``: what it accepts as
safetensors, how it maps dtypes, folds 5-D shapes, and in which order it sees
the tensors (sorted by name, as its JSON library stores objects).

Errors never quote the file: not the header length found in its first 8 bytes
(those may be ``root:x:0`` read as a number), not a tensor name or value from
the JSON. A tensor is named by its position in the header instead.
"""

from __future__ import annotations

import json
import math
import os
import struct
from typing import Any

from sdrest.models.binio import HeaderReader
from sdrest.models.tensors import MAX_DIMS, FormatError, NotThisFormat, TensorInfo, TensorTable

__all__ = ["MAX_HEADER_SIZE", "read_safetensors"]

MAX_HEADER_SIZE = 256 << 20
"""Largest JSON header read (the format's own limit is 100 MB)."""

# stored dtype -> (our dtype name, bytes per element, what sd.cpp loads it as)
_DTYPES: dict[str, tuple[str, int]] = {
    "F16": ("f16", 2),
    "BF16": ("bf16", 2),
    "F32": ("f32", 4),
    "F64": ("f64", 8),
    "F8_E4M3": ("f8_e4m3", 1),
    "F8_E5M2": ("f8_e5m2", 1),
    "I32": ("i32", 4),
    "I64": ("i64", 8),
    "U8": ("u8", 1),
}
_OTHER_DTYPES: dict[str, int] = {
    "BOOL": 1,
    "I8": 1,
    "I16": 2,
    "U16": 2,
    "U32": 4,
    "U64": 8,
    "F8_E8M0": 1,
    "F4": 1,
    "F6_E2M3": 1,
    "F6_E3M2": 1,
}


def _header_bounds(r: HeaderReader) -> int:
    if r.size <= 8:
        raise NotThisFormat("not a safetensors file: 8 bytes or fewer")
    (n,) = struct.unpack("<Q", r.read(8, "header size"))
    if n >= r.size:
        raise NotThisFormat("not a safetensors file: its header size is beyond the end of the file")
    if n <= 2:
        raise NotThisFormat("not a safetensors file: its header size is too small")
    if n > MAX_HEADER_SIZE:
        raise FormatError(f"safetensors header is larger than the {MAX_HEADER_SIZE} bytes allowed")
    return int(n)


def _parse_header(raw: bytes) -> dict[str, Any]:
    text = raw.split(b"\0", 1)[0]  # sd.cpp parses the header as a C string
    try:
        header = json.loads(text)
    except json.JSONDecodeError as exc:
        # exc.msg may quote a character of the file ("Invalid \\escape: 'x'"): only the position is kept
        raise NotThisFormat(f"safetensors header is not valid JSON (at byte {exc.pos})") from None
    except (ValueError, RecursionError):  # UnicodeDecodeError quotes the bad byte
        raise NotThisFormat("safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise FormatError("safetensors header is not a JSON object")
    return header


def read_safetensors(path: str | os.PathLike[str]) -> TensorTable:
    """Read the header of a safetensors file; :class:`FormatError` if it is not one."""
    table = TensorTable(format="safetensors")
    with HeaderReader(path, readahead=False) as r:
        try:
            n = _header_bounds(r)
            header = _parse_header(r.read(n, "header"))
            file_size = r.size
        finally:
            table.bytes_read = r.bytes_read
    table.header_size = 8 + n
    meta = header.pop("__metadata__", None)
    if isinstance(meta, dict):
        table.metadata.update({str(k): v for k, v in meta.items()})
    end = 0
    for index, name in enumerate(sorted(header, key=lambda s: s.encode("utf-8", "surrogatepass"))):
        info = _tensor(name, header[name], table, index)
        if info is None:
            continue
        end = max(end, (info.offset or 0) + info.nbytes)
    table.data_size = max(0, end - table.header_size)
    if end > file_size:
        table.warnings.append(f"file is {file_size} bytes but its header needs {end}: truncated (incomplete download?)")
    return table


def _tensor(name: str, entry: Any, table: TensorTable, index: int) -> TensorInfo | None:
    # errors name the tensor by its position (in sorted order), never by what the file says
    where = f"tensor {index} (in name order)"
    if not isinstance(entry, dict):
        raise FormatError(f"{where}: header entry is not an object")
    dtype = entry.get("dtype")
    shape = entry.get("shape")
    offsets = entry.get("data_offsets")
    if not isinstance(dtype, str):
        raise FormatError(f"{where}: missing dtype")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise FormatError(f"{where}: bad shape (not a list of non-negative integers)")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and o >= 0 for o in offsets)
        or offsets[1] < offsets[0]
    ):
        raise FormatError(f"{where}: bad data_offsets (not two ascending non-negative integers)")
    begin, stop = offsets
    n_el = math.prod(shape)
    if dtype in _DTYPES:
        our, esize = _DTYPES[dtype]
    elif dtype in _OTHER_DTYPES:
        our, esize = dtype.lower(), _OTHER_DTYPES[dtype]
        table.problems.append(f"unsupported dtype '{dtype}' (tensor '{name}')")
    else:
        raise FormatError(f"{where}: unknown dtype")
    if dtype not in ("F4", "F6_E2M3", "F6_E3M2") and stop - begin != n_el * esize:
        table.problems.append(f"size mismatch for tensor '{name}' ({dtype})")
    if dtype == "U8":
        table.sdcpp_skipped.add(name)
    elif len(shape) > MAX_DIMS:
        table.problems.append(f"invalid tensor '{name}': {len(shape)} dimensions")
    dims = list(shape)
    if len(dims) == 5:  # sd.cpp folds the two outermost dimensions
        dims = [dims[0] * dims[1], *dims[2:]]
    ne = [1] * MAX_DIMS
    for i, d in enumerate(reversed(dims[:MAX_DIMS])):
        ne[i] = d
    info = TensorInfo(name, our, tuple(shape), tuple(ne), stop - begin, table.header_size + begin)
    table.add(info)
    return info
