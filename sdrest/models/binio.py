"""Bounded, counted reads from a file: the only way the header readers touch the disk.

A reader never trusts a length it finds in a file: every read is checked against
the file's size first, so a damaged header gives a :class:`FormatError`, never a
huge allocation or a hang. Its messages name what was being read and where (an
offset, the bytes left), never a length or any other value taken from the file:
a file that is not a model (a link to ``/etc/passwd``) must not show its bytes. Reads are unbuffered, either exact (a format whose
header length is known up front) or with a small read-ahead that grows with what
was read (4 KiB, doubling to 1 MiB), so bytes read stay below twice the header
plus 4 KiB: the tensor data behind a header is never read in bulk.
"""

from __future__ import annotations

import io
import os
import struct
from types import TracebackType
from typing import Any, BinaryIO

from sdrest.models.tensors import FormatError

__all__ = ["CountingFile", "HeaderReader"]

_FIRST_CHUNK = 4096
_MAX_CHUNK = 1 << 20


class HeaderReader:
    """Sequential little-endian reads from the start of a file, bounded by its size."""

    def __init__(self, path: str | os.PathLike[str], *, start: int = 0, readahead: bool = True) -> None:
        self._f: BinaryIO = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        try:
            self.size = os.fstat(self._f.fileno()).st_size
            self._f.seek(start)
        except BaseException:
            self._f.close()
            raise
        self._buf = b""
        self._buf_pos = 0
        self._file_pos = start  # file offset of the end of _buf
        self._chunk = _FIRST_CHUNK if readahead else 0
        self._readahead = readahead
        self.bytes_read = 0

    def __enter__(self) -> HeaderReader:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._f.close()

    @property
    def pos(self) -> int:
        """File offset of the next byte :meth:`read` returns."""
        return self._file_pos - (len(self._buf) - self._buf_pos)

    @property
    def remaining(self) -> int:
        """Bytes between the current position and the end of the file."""
        return self.size - self.pos

    def read(self, n: int, what: str = "data") -> bytes:
        """Exactly ``n`` bytes, or :class:`FormatError` naming ``what`` was cut short.

        ``what`` goes into the message as it is: callers pass a fixed label (``"tensor 3 name"``),
        never a name or value read from the file.
        """
        start = self._buf_pos
        if 0 <= n <= len(self._buf) - start:  # fast path: already buffered
            self._buf_pos = start + n
            return self._buf[start : start + n]
        if n < 0 or n > self.remaining:
            raise self._past_end(what)
        avail = len(self._buf) - self._buf_pos
        parts = [self._buf[self._buf_pos :]]
        need = n - avail
        self._buf, self._buf_pos = b"", 0
        want = max(need, min(self._chunk, self.size - self._file_pos))
        data = self._raw_read(want)
        if len(data) < need:
            raise FormatError(f"truncated: {what} at offset {self.pos} could not be read")
        parts.append(data[:need])
        self._buf, self._buf_pos = data, need
        if self._readahead:
            self._chunk = min(self._chunk * 2, _MAX_CHUNK)
        return b"".join(parts)

    def skip(self, n: int, what: str = "data") -> None:
        """Move ``n`` bytes forward (checked against the file's end, nothing read when past the buffer)."""
        if n < 0 or n > self.remaining:
            raise self._past_end(what)
        avail = len(self._buf) - self._buf_pos
        if n <= avail:
            self._buf_pos += n
            return
        target = self.pos + n
        self._buf, self._buf_pos = b"", 0
        self._f.seek(target)
        self._file_pos = target

    def _past_end(self, what: str) -> FormatError:
        # the length asked for came from the file: it is not part of the message
        return FormatError(
            f"truncated: {what} at offset {self.pos} runs past the end of the file ({self.remaining} bytes left)"
        )

    def _raw_read(self, n: int) -> bytes:
        chunks = []
        while n > 0:
            data = self._f.read(n)
            if not data:
                break
            chunks.append(data)
            n -= len(data)
            self._file_pos += len(data)
            self.bytes_read += len(data)
        return b"".join(chunks)

    def u8(self, what: str = "u8") -> int:
        """One unsigned byte."""
        return self.read(1, what)[0]

    def u32(self, what: str = "u32") -> int:
        """A little-endian uint32."""
        return int(struct.unpack("<I", self.read(4, what))[0])

    def u64(self, what: str = "u64") -> int:
        """A little-endian uint64."""
        return int(struct.unpack("<Q", self.read(8, what))[0])

    def unpack(self, fmt: str, what: str = "value") -> tuple[Any, ...]:
        """``struct.unpack`` of the next ``calcsize(fmt)`` bytes (``fmt`` must be little-endian)."""
        return struct.unpack(fmt, self.read(struct.calcsize(fmt), what))


class CountingFile(io.RawIOBase):
    """A read-only raw file that counts the bytes it returns (for the zip reader)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self._f: BinaryIO = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = self._f.readinto(b)  # type: ignore[attr-defined]
        if n:
            self.bytes_read += n
        return n or 0

    def close(self) -> None:
        if not self.closed:
            self._f.close()
        super().close()
