"""PyTorch ``.ckpt`` / ``.pt`` / ``.pth`` files: the zip format and the legacy format.

Only the pickled state dict is read (through :mod:`sdrest.models.torch_pickle`,
which executes nothing); storages are located from the zip's central directory
or computed from the legacy layout, never read. Mirrors stable-diffusion.cpp's
``torch_zip_io.cpp`` and ``torch_legacy_io.cpp``.

Errors never quote the file: not a zip member's name, a storage key or a tensor
name (tensors are named by their position in the state dict), and not the
``zipfile`` module's own messages, which may quote names from the archive.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable

from sdrest.models.binio import CountingFile
from sdrest.models.tensors import MAX_DIMS, FormatError, NotThisFormat, TensorInfo, TensorTable
from sdrest.models.torch_pickle import (
    NeedMoreData,
    PickleTensor,
    StateDict,
    is_torch_magic_number,
    parse_state_dict,
    parse_uint32_object,
    skip_pickle_object,
)

__all__ = ["MAX_PICKLE_SIZE", "read_torch_legacy", "read_torch_zip"]

MAX_PICKLE_SIZE = 512 << 20
"""Largest pickle read from a torch file (a state dict's pickle is a few MB at most)."""

_LEGACY_STORAGE_HEADER = 8
_FIRST_READ = 4 << 10


def _tensor_info(t: PickleTensor, offset: int | None) -> TensorInfo:
    # sd.cpp keeps pickle shapes unfolded (up to 5 dims) and reverses them into ne
    ne = [1] * MAX_DIMS
    for i, d in enumerate(reversed(t.shape)):
        ne[i] = d
    return TensorInfo(t.name, t.dtype, t.shape, tuple(ne), t.nbytes, offset)


def read_torch_zip(path: str | os.PathLike[str]) -> TensorTable:
    """Read the state dict of a zip-format torch file; :class:`FormatError` if sd.cpp could not."""
    table = TensorTable(format="torch_zip")
    raw = CountingFile(path)
    try:
        try:
            zf = zipfile.ZipFile(raw)
        except (zipfile.BadZipFile, ValueError, EOFError, NotImplementedError):
            raise NotThisFormat("not a zip file") from None
        with zf:
            entries = {info.filename: info for info in zf.infolist()}
            found = False
            for info in zf.infolist():
                pos = info.filename.find("data.pkl")
                if pos < 0:
                    continue
                found = True
                if info.file_size > MAX_PICKLE_SIZE or info.file_size == 0:
                    raise FormatError("the zip's data.pkl is empty or too large to be a state dict")
                try:
                    with zf.open(info) as f:
                        data = f.read(MAX_PICKLE_SIZE + 1)
                except (zipfile.BadZipFile, OSError, NotImplementedError, EOFError, ValueError):
                    raise FormatError("the zip's data.pkl could not be read (damaged or compressed oddly)") from None
                if len(data) > MAX_PICKLE_SIZE:
                    raise FormatError(f"the zip's data.pkl is larger than {MAX_PICKLE_SIZE} bytes")
                table.header_size += info.compress_size
                _add_zip_tensors(table, parse_state_dict(data), info.filename[:pos], entries)
            if not found:
                raise FormatError("data.pkl was not found in the zip")
    finally:
        table.bytes_read = raw.bytes_read
        raw.close()
    return table


def _add_zip_tensors(table: TensorTable, state: StateDict, folder: str, entries: dict[str, zipfile.ZipInfo]) -> None:
    for i, t in enumerate(state.tensors):
        entry_name = f"{folder}data/{t.storage_key}"
        entry = entries.get(entry_name)
        if entry is None:
            raise FormatError(f"the storage of tensor {i} is not in the zip")
        storage_size = state.storage_nbytes.get(t.storage_key)
        if storage_size is not None and entry.file_size < storage_size:
            raise FormatError(f"the storage of tensor {i} is smaller than its pickle says")
        if t.offset + t.nbytes > entry.file_size:
            raise FormatError(f"tensor {i} runs past the end of its storage")
        offset = None
        if entry.compress_type == zipfile.ZIP_STORED:
            offset = entry.header_offset + 30 + len(entry.orig_filename.encode()) + t.offset
        table.add(_tensor_info(t, offset))
        table.data_size += t.nbytes


def read_torch_legacy(path: str | os.PathLike[str]) -> TensorTable:
    """Read the state dict of a legacy (pre-zip) torch file; :class:`FormatError` if sd.cpp could not."""
    table = TensorTable(format="torch_legacy")
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise FormatError("empty file")
        buf = b""
        read_total = 0

        def grow(minimum: int) -> None:
            nonlocal buf, read_total
            want = min(max(minimum, 2 * len(buf), _FIRST_READ), size, MAX_PICKLE_SIZE)
            if want <= len(buf):
                raise FormatError(f"pickles are larger than {MAX_PICKLE_SIZE} bytes or the file ends")
            f.seek(len(buf))
            more = f.read(want - len(buf))
            read_total += len(more)
            buf += more

        def object_size(start: int) -> int | None:
            while True:
                try:
                    return skip_pickle_object(buf, start, complete=len(buf) >= size)
                except NeedMoreData:
                    try:
                        grow(len(buf) + 1)
                    except FormatError:
                        return None

        try:
            grow(_FIRST_READ)
            _read_legacy(table, size, lambda: buf, object_size)
        finally:
            table.bytes_read = read_total
    return table


def _read_legacy(
    table: TensorTable,
    file_size: int,
    get_buf: Callable[[], bytes],
    size_of: Callable[[int], int | None],
) -> None:
    """The legacy layout: magic, protocol 1001, sys_info, state dict, storage keys, storages."""
    unsupported = "unsupported PyTorch file: not a torch state_dict sd.cpp can read"
    first = size_of(0)
    offset = 0
    if first is not None and is_torch_magic_number(get_buf()[:first]):
        offset = first
        second = size_of(offset)
        if second is None or parse_uint32_object(get_buf()[offset : offset + second]) != 1001:
            raise FormatError(unsupported)
        offset += second
        third = size_of(offset)  # sys_info, ignored
        if third is None:
            raise FormatError(unsupported)
        offset += third
    elif first is None:
        raise FormatError(unsupported)
    sd_size = size_of(offset)
    if sd_size is None:
        raise FormatError(unsupported)
    state = parse_state_dict(get_buf()[offset : offset + sd_size])
    after = offset + sd_size
    keys_size = size_of(after)
    if keys_size is None:
        raise FormatError(unsupported)
    data_start = after + keys_size
    table.header_size = data_start
    # storages follow in sorted key order, each behind an 8-byte header
    offsets: dict[str, int] = {}
    cur = data_start
    for index, key in enumerate(sorted(state.storage_nbytes)):
        nbytes = state.storage_nbytes[key]
        if cur + _LEGACY_STORAGE_HEADER + nbytes > file_size:
            raise FormatError(f"storage {index} (in key order) runs past the end of the file (truncated?)")
        offsets[key] = cur + _LEGACY_STORAGE_HEADER
        cur += _LEGACY_STORAGE_HEADER + nbytes
    for i, t in enumerate(state.tensors):
        base = offsets.get(t.storage_key)
        if base is None:
            raise FormatError(f"tensor {i} uses an unknown storage")
        if t.offset + t.nbytes > state.storage_nbytes[t.storage_key]:
            raise FormatError(f"tensor {i} runs past the end of its storage")
        table.add(_tensor_info(t, base + t.offset))
    table.data_size = cur - data_start
