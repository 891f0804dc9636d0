"""Streamed hashes: sha256, A1111's short and legacy hashes, progress and cancel."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from sdrest.models.hashing import HashCancelled, file_hashes, legacy_hash


def test_small_file(tmp_path: Path) -> None:
    p = tmp_path / "x.bin"
    p.write_bytes(b"hello")
    h = file_hashes(p)
    assert h.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert h.autov2 == h.sha256[:10]
    assert h.legacy == hashlib.sha256(b"").hexdigest()[:8]  # A1111 reads nothing past 1 MiB
    assert h.to_dict() == {"sha256": h.sha256, "autov2": h.autov2, "legacy": h.legacy}


def test_sparse_file_streams(tmp_path: Path) -> None:
    p = tmp_path / "sparse.bin"
    with open(p, "wb") as f:
        f.truncate(5 << 20)
    steps: list[int] = []
    h = file_hashes(p, progress=lambda done, total: steps.append(done))
    assert h.sha256 == hashlib.sha256(bytes(5 << 20)).hexdigest()
    assert steps == [1 << 20, 2 << 20, 3 << 20, 4 << 20, 5 << 20]
    assert legacy_hash(p) == hashlib.sha256(bytes(0x10000)).hexdigest()[:8]


def test_cancel(tmp_path: Path) -> None:
    p = tmp_path / "sparse.bin"
    with open(p, "wb") as f:
        f.truncate(3 << 20)
    stop = threading.Event()
    with pytest.raises(HashCancelled):
        file_hashes(p, progress=lambda done, total: stop.set(), cancel=stop)
