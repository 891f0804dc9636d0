"""A GGUF header reader: metadata key/values and the tensor table, no tensor data.

Follows ggml's ``gguf.cpp`` (versions 2 and 3, little-endian; ``general.alignment``;
data section aligned after the tensor infos). Lengths from the file are checked
against the file's size before anything is allocated.

Errors never quote the file: keys and tensors are named by their position
(``key 3``, ``tensor 12``), and no length, count, type id or version read from
it appears in a message.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from typing import Any

from sdrest.models.binio import HeaderReader
from sdrest.models.ggml_types import ggml_type, tensor_nbytes
from sdrest.models.tensors import FormatError, NotThisFormat, TensorInfo, TensorTable

__all__ = ["GGUF_MAGIC", "ArraySummary", "read_gguf"]

GGUF_MAGIC = b"GGUF"
GGUF_DEFAULT_ALIGNMENT = 32
_MAX_DIMS = 4  # GGML_MAX_DIMS
_ARRAY_KEEP = 64  # arrays longer than this are summarised, not kept
_MAX_STRING = 1 << 30  # GGUF_MAX_STRING_LENGTH
_MAX_ARRAY = 1 << 30  # GGUF_MAX_ARRAY_ELEMENTS

# GGUF value types -> struct format (scalars)
_SCALARS: dict[int, tuple[str, str]] = {
    0: ("<B", "uint8"),
    1: ("<b", "int8"),
    2: ("<H", "uint16"),
    3: ("<h", "int16"),
    4: ("<I", "uint32"),
    5: ("<i", "int32"),
    6: ("<f", "float32"),
    7: ("<?", "bool"),
    10: ("<Q", "uint64"),
    11: ("<q", "int64"),
    12: ("<d", "float64"),
}
_STRING = 8
_ARRAY = 9


@dataclass(frozen=True, slots=True)
class ArraySummary:
    """A long metadata array (a tokenizer's vocabulary, say), kept as its type and length only."""

    element_type: str
    length: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {"array_of": self.element_type, "length": self.length}


def _string(r: HeaderReader, what: str) -> str:
    n = r.u64(f"{what} length")
    if n > _MAX_STRING:
        raise FormatError(f"{what}: string length exceeds the GGUF maximum")
    return r.read(n, what).decode("utf-8", errors="replace")


def _type_name(t: int) -> str:
    if t == _STRING:
        return "string"
    if t == _ARRAY:
        return "array"
    if t in _SCALARS:
        return _SCALARS[t][1]
    return f"type {t}"


def _value(r: HeaderReader, vtype: int, key: str) -> Any:
    """One metadata value of type ``vtype``; ``key`` is a fixed label for messages (``"value of key 3"``)."""
    if vtype in _SCALARS:
        fmt = _SCALARS[vtype][0]
        return r.unpack(fmt, key)[0]
    if vtype == _STRING:
        return _string(r, key)
    if vtype == _ARRAY:
        etype = r.u32(f"{key} array type")
        n = r.u64(f"{key} array length")
        if n > _MAX_ARRAY:
            raise FormatError(f"{key}: array length exceeds the GGUF maximum")
        if etype in _SCALARS:
            fmt = _SCALARS[etype][0]
            size = struct.calcsize(fmt)
            if n * size > r.remaining:
                raise FormatError(f"truncated: {key}, an array, runs past the end of the file")
            if n > _ARRAY_KEEP:
                r.skip(n * size, key)
                return ArraySummary(_type_name(etype), n)
            data = r.read(n * size, key)
            return [v[0] for v in struct.iter_unpack(fmt, data)]
        if etype == _STRING:
            if n * 8 > r.remaining:
                raise FormatError(f"truncated: {key}, an array of strings, runs past the end of the file")
            if n > _ARRAY_KEEP:
                for _ in range(n):
                    r.skip(r.u64(f"{key} item length"), key)
                return ArraySummary("string", n)
            return [_string(r, key) for _ in range(n)]
        if etype == _ARRAY:
            items = [_value(r, _ARRAY, key) for _ in range(n)]
            return items if n <= _ARRAY_KEEP else ArraySummary("array", n)
        raise FormatError(f"{key}: an array of an unknown GGUF type")
    raise FormatError(f"{key}: unknown GGUF type")


def read_gguf(path: str | os.PathLike[str]) -> TensorTable:
    """Read a GGUF file's metadata and tensor table; :class:`FormatError` if it is not valid GGUF."""
    table = TensorTable(format="gguf")
    with HeaderReader(path) as r:
        try:
            _read(r, table)
        except RecursionError:
            raise FormatError("GGUF metadata nests arrays too deeply") from None
        finally:
            table.bytes_read = r.bytes_read
    return table


def _read(r: HeaderReader, table: TensorTable) -> None:
    magic = r.read(4, "magic") if r.size >= 4 else b""
    if magic != GGUF_MAGIC:
        raise NotThisFormat("not a GGUF file (bad magic)")
    version = r.u32("version")
    if version == 1:
        raise FormatError("GGUF version 1 is no longer supported by ggml")
    if version == 0 or version & 0xFFFF == 0 or version > 3:
        raise FormatError("unsupported GGUF version (ggml reads versions 2 and 3)")
    n_tensors = r.u64("tensor count")
    n_kv = r.u64("key/value count")
    # each tensor info takes at least 8+4+4+8 bytes, each key/value at least 8+4 bytes
    if n_tensors * 24 > r.remaining or n_kv * 12 > r.remaining:
        raise FormatError("the header claims more tensors or keys than the file can hold")
    table.metadata["gguf.version"] = version
    alignment = GGUF_DEFAULT_ALIGNMENT
    for index in range(n_kv):
        key = _string(r, f"key {index}")
        vtype = r.u32(f"type of key {index}")
        value = _value(r, vtype, f"value of key {index}")
        if key in table.metadata:
            raise FormatError(f"key {index} repeats an earlier key")
        table.metadata[key] = value
        if key == "general.alignment":
            if vtype != 4 or not isinstance(value, int) or value <= 0 or value & (value - 1):
                raise FormatError("general.alignment is not a power of two (uint32)")
            alignment = value
    infos: list[tuple[str, tuple[int, ...], int, int]] = []
    for i in range(n_tensors):
        name = _string(r, f"name of tensor {i}")
        n_dims = r.u32(f"dimensions of tensor {i}")
        if n_dims > 64:
            raise FormatError(f"tensor {i} claims more than 64 dimensions")
        # the shape, the type and the offset in one read
        *ne, type_id, offset = r.unpack(f"<{n_dims}qIQ", f"shape of tensor {i}")
        if any(d < 0 for d in ne):
            raise FormatError(f"tensor {i} has a negative dimension")
        if len(ne) > _MAX_DIMS:  # sd.cpp's fallback reader stacks the extra dims into the last
            ne = [*ne[: _MAX_DIMS - 1], math.prod(ne[_MAX_DIMS - 1 :])]
        infos.append((name, tuple(ne), type_id, offset))
    data_start = -(-r.pos // alignment) * alignment
    table.header_size = data_start
    end = data_start
    for i, (name, ne_t, type_id, offset) in enumerate(infos):
        gtype = ggml_type(type_id)
        n_el = math.prod(ne_t)
        if gtype is None:
            raise FormatError(f"tensor {i} has an unknown ggml type")
        if ne_t and ne_t[0] % gtype.block_size:
            table.problems.append(
                f"tensor '{name}': row of {ne_t[0]} elements is not a multiple of {gtype.name}'s block size"
            )
        nbytes = tensor_nbytes(gtype, n_el)
        if name in table.tensors:
            raise FormatError(f"tensor {i} repeats the name of an earlier tensor")
        shape = tuple(reversed(ne_t))
        ne5 = tuple(list(ne_t) + [1] * (5 - len(ne_t)))
        table.add(TensorInfo(name, gtype.name, shape, ne5, nbytes, data_start + offset))
        end = max(end, data_start + offset + nbytes)
    table.data_size = end - data_start
    if end > r.size:
        table.warnings.append(
            f"file is {r.size} bytes but its tensor table needs {end}: truncated (incomplete download?)"
        )
