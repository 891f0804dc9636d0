"""File hashes the way model sites and AUTOMATIC1111 show them, streamed.

``sha256`` of the whole file, A1111's short hash (``autov2``: first 10 hex of the
sha256) and A1111's legacy model hash (``legacy``: sha256 of the 64 KiB at
offset 1 MiB, first 8 hex). :func:`lora_hash` is the hash A1111 records for a LoRA
(``Lora hashes`` in its infotext; civitai's AutoV3). Files are read in 1 MiB chunks, so memory stays flat
for a 20 GB model; a ``progress(done, total)`` callback can show how far it got,
and ``cancel`` (any object with ``is_set()``) stops it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["FileChanged", "HashCancelled", "Hashes", "file_hashes", "legacy_hash", "lora_hash"]

_CHUNK = 1 << 20


class _Event(Protocol):
    def is_set(self) -> bool: ...


class HashCancelled(Exception):
    """Hashing was stopped by its ``cancel`` event."""


class FileChanged(OSError):
    """The file is not the one expected (its size, mtime or identity differ): nothing was hashed."""


@dataclass(frozen=True, slots=True)
class Hashes:
    """sha256 (hex), A1111's short hash (``autov2``) and legacy model hash (``legacy``)."""

    sha256: str
    autov2: str
    legacy: str

    def to_dict(self) -> dict[str, str]:
        """A JSON-friendly form."""
        return {"sha256": self.sha256, "autov2": self.autov2, "legacy": self.legacy}


def legacy_hash(path: str | os.PathLike[str]) -> str:
    """A1111's old "model hash": sha256 of 64 KiB at offset 1 MiB, first 8 hex digits."""
    with open(path, "rb") as f:
        f.seek(0x100000)
        return hashlib.sha256(f.read(0x10000)).hexdigest()[:8]


def lora_hash(path: str | os.PathLike[str]) -> str:
    """A1111's short hash of a LoRA (its ``Lora hashes`` infotext field, civitai's AutoV3): the first 12 hex of
    the sha256 of a safetensors file's tensor data (everything after its JSON header: the "addnet" hash, so
    editing the metadata keeps it), or of the whole file for any other format. Streamed in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(9)
        header_length = int.from_bytes(head[:8], "little") if len(head) == 9 else -1
        # a safetensors file: an 8-byte little-endian length, then that much JSON starting with '{'
        f.seek(8 + header_length if head[8:9] == b"{" and 0 < header_length <= size - 8 else 0)
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()[:12]


def file_hashes(
    path: str | os.PathLike[str],
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: _Event | None = None,
    expect: tuple[int, int, tuple[int, int] | None] | None = None,
) -> Hashes:
    """Stream the file once and return its :class:`Hashes`.

    ``expect`` = (size, mtime_ns, (device, inode) or None): the file opened must be that one
    (checked on the open file, so a link retargeted in between is caught), else
    :class:`FileChanged` before a byte is read.
    """
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        st = os.fstat(f.fileno())
        if expect is not None:
            size, mtime_ns, file_id = expect
            if (st.st_size, st.st_mtime_ns) != (size, mtime_ns) or (
                file_id is not None and (st.st_dev, st.st_ino) != tuple(file_id)
            ):
                raise FileChanged("the file changed since it was scanned")
        total = st.st_size
        done = 0
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while True:
            if cancel is not None and cancel.is_set():
                raise HashCancelled(str(path))
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
            done += n
            if progress is not None:
                progress(done, total)
        legacy = hashlib.sha256(os.pread(f.fileno(), 0x10000, 0x100000)).hexdigest()[:8]
    digest = h.hexdigest()
    return Hashes(sha256=digest, autov2=digest[:10], legacy=legacy)
