"""The header readers on their own: GGUF, safetensors, torch zip and legacy, ggml's type table."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from sdrest import _native
from sdrest.models.ggml_types import GGML_TYPES, GGML_TYPES_BY_NAME, is_quantized, tensor_nbytes
from sdrest.models.gguf import ArraySummary, read_gguf
from sdrest.models.reader import read_tensors
from sdrest.models.safetensors import read_safetensors
from sdrest.testing.headers import write_gguf, write_safetensors, write_torch_legacy, write_torch_zip
from sdrest.models.torchfile import read_torch_legacy, read_torch_zip


def test_type_table_matches_ggml() -> None:
    """One source of truth: our names are ggml's, id for id (removed ids absent)."""
    native = _native.type_names()
    assert len(native) == max(GGML_TYPES) + 1
    for i, name in enumerate(native):
        if name is None or "REMOVED" in name:
            assert i not in GGML_TYPES, i
        else:
            assert GGML_TYPES[i].name == name


@pytest.mark.parametrize(
    ("name", "block", "size"),
    [
        ("f32", 1, 4),
        ("f16", 1, 2),
        ("bf16", 1, 2),
        ("q4_0", 32, 18),
        ("q4_1", 32, 20),
        ("q5_0", 32, 22),
        ("q5_1", 32, 24),
        ("q8_0", 32, 34),
        ("q2_K", 256, 84),
        ("q3_K", 256, 110),
        ("q4_K", 256, 144),
        ("q5_K", 256, 176),
        ("q6_K", 256, 210),
        ("iq4_xs", 256, 136),
        ("iq2_xxs", 256, 66),
        ("mxfp4", 32, 17),
    ],
)
def test_block_layouts(name: str, block: int, size: int) -> None:
    t = GGML_TYPES_BY_NAME[name]
    assert (t.block_size, t.type_size) == (block, size)
    assert tensor_nbytes(t, block * 10) == size * 10


def test_is_quantized() -> None:
    assert is_quantized("q8_0") and is_quantized("q4_K")
    assert not is_quantized("f16") and not is_quantized("f8_e4m3")


def test_gguf_metadata_types(tmp_path: Path) -> None:
    p = tmp_path / "m.gguf"
    meta = {
        "general.name": "x",
        "a.u32": 7,
        "a.neg": -5,
        "a.f": 0.5,
        "a.b": True,
        "a.strs": ["p", "q"],
        "a.ints": [1, 2, 3],
        "long": list(range(100)),
    }
    write_gguf(p, [("t.weight", (64, 32), "q8_0"), ("t.bias", (64,), "f32")], metadata=meta, alignment=64)
    table = read_gguf(p)
    for k in ("general.name", "a.u32", "a.neg", "a.b", "a.strs", "a.ints"):
        assert table.metadata[k] == meta[k]
    assert table.metadata["a.f"] == pytest.approx(0.5)
    assert table.metadata["long"] == ArraySummary("int32", 100)
    assert table.metadata["general.alignment"] == 64
    w, b = table.tensors["t.weight"], table.tensors["t.bias"]
    assert (w.dtype, w.shape, w.ne, w.nbytes) == ("q8_0", (64, 32), (32, 64, 1, 1, 1), 64 * 34)
    assert table.header_size % 64 == 0
    assert w.offset == table.header_size
    assert b.offset == table.header_size + 64 * 34 + (-(64 * 34) % 64)
    assert table.data_size == b.offset + 64 * 4 - table.header_size


def test_gguf_bad_alignment(tmp_path: Path) -> None:
    p = tmp_path / "m.gguf"
    write_gguf(p, [("t", (32,))], metadata={"general.alignment": 48})
    with pytest.raises(ValueError, match="power of two"):
        read_gguf(p)


def test_safetensors_order_and_metadata(tmp_path: Path) -> None:
    """sd.cpp sees safetensors tensors sorted by name (its JSON object is a sorted map)."""
    p = tmp_path / "m.safetensors"
    write_safetensors(p, [("b", (2,)), ("a.z", (3,)), ("a.b", (1,)), ("B", (1,))], metadata={"k": "v"})
    t = read_safetensors(p)
    assert list(t.tensors) == ["B", "a.b", "a.z", "b"]
    assert t.metadata == {"k": "v"}
    assert t.bytes_read == t.header_size


def test_safetensors_u8_is_skipped_by_sdcpp_only(tmp_path: Path) -> None:
    p = tmp_path / "m.safetensors"
    write_safetensors(p, [("mask", (4,), "u8"), ("w", (4, 4), "f16")])
    t = read_tensors(p)
    assert set(t.tensors) == {"mask", "w"}
    assert t.sdcpp_skipped == {"mask"}


def test_safetensors_unsupported_dtype_is_a_problem(tmp_path: Path) -> None:
    p = tmp_path / "m.safetensors"
    raw = json.dumps({"w": {"dtype": "I8", "shape": [4], "data_offsets": [0, 4]}}).encode()
    p.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4)
    t = read_safetensors(p)
    assert t.tensors["w"].dtype == "i8"
    assert t.problems == ["unsupported dtype 'I8' (tensor 'w')"]


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16", "i64"])
def test_torch_zip(tmp_path: Path, dtype: str) -> None:
    p = tmp_path / "m.ckpt"
    write_torch_zip(p, [("a.weight", (4, 3, 2, 2)), ("a.bias", (4,))], dtype=dtype)
    t = read_torch_zip(p)
    assert [(x.name, x.dtype, x.shape) for x in t] == [("a.weight", dtype, (4, 3, 2, 2)), ("a.bias", dtype, (4,))]
    esize = {"f32": 4, "f16": 2, "bf16": 2, "i64": 8}[dtype]
    assert t.tensors["a.weight"].nbytes == 48 * esize
    # the offsets point at the storages inside the (stored) zip
    raw = p.read_bytes()
    off = t.tensors["a.bias"].offset
    assert off is not None and raw[off : off + 4 * esize] == bytes(4 * esize)


def test_torch_legacy(tmp_path: Path) -> None:
    p = tmp_path / "m.pt"
    size = write_torch_legacy(p, [("a.weight", (4, 3)), ("b", (2,))] + [(f"x{i}", (1,)) for i in range(10)])
    t = read_torch_legacy(p)
    assert [x.name for x in t][:2] == ["a.weight", "b"]
    # storages are laid out in sorted key order ("0", "1", "10", "11", "2", ...)
    last = max(t, key=lambda x: x.offset or 0)
    assert (last.offset or 0) + last.nbytes == size
    assert t.bytes_read < 8192


def test_legacy_storage_past_end_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "m.pt"
    size = write_torch_legacy(p, [("a.weight", (64, 64))])
    with open(p, "r+b") as f:
        f.truncate(size - 1)
    with pytest.raises(ValueError, match="past the end"):
        read_torch_legacy(p)
