"""Bad files never crash, hang or execute anything: they give kind="unknown" with an error."""

from __future__ import annotations

import json
import pickle
import struct
import time
import zipfile
from pathlib import Path

import pytest

from sdrest.models import FormatError, detect
from sdrest.models.gguf import read_gguf
from sdrest.models.safetensors import read_safetensors
from sdrest.testing.headers import state_dict_pickle, write_gguf, write_safetensors, write_torch_zip
from sdrest.models.torch_pickle import parse_state_dict


def assert_unknown(path: Path) -> str:
    t0 = time.perf_counter()
    info = detect(path)
    assert time.perf_counter() - t0 < 5
    assert info.kind == "unknown"
    assert info.error
    assert info.architecture is None
    return info.error


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        detect(tmp_path / "nope.safetensors")


def test_zero_length(tmp_path: Path) -> None:
    p = tmp_path / "empty.safetensors"
    p.write_bytes(b"")
    assert "empty" in assert_unknown(p)


def test_truncated_safetensors_header(tmp_path: Path) -> None:
    p = tmp_path / "cut.safetensors"
    write_safetensors(p, [("a.weight", (4, 4))])
    raw = p.read_bytes()
    p.write_bytes(raw[:20])  # the size prefix promises more header than the file has
    assert "safetensors" in assert_unknown(p)


def test_huge_header_length(tmp_path: Path) -> None:
    p = tmp_path / "huge.safetensors"
    p.write_bytes(struct.pack("<Q", 1 << 60) + b"{}" + b" " * 100)
    err = assert_unknown(p)
    assert "header size is beyond" in err
    assert str(1 << 60) not in err  # the length read from the file is not echoed


def test_header_length_larger_than_allowed(tmp_path: Path) -> None:
    p = tmp_path / "big.safetensors"
    with open(p, "wb") as f:
        f.write(struct.pack("<Q", 1 << 30) + b"{")
        f.truncate(2 << 30)  # sparse: the header would fit, but is over the limit
    with pytest.raises(FormatError, match="larger than"):
        read_safetensors(p)
    assert_unknown(p)


def test_invalid_json(tmp_path: Path) -> None:
    p = tmp_path / "bad.safetensors"
    p.write_bytes(struct.pack("<Q", 10) + b"{not json}" + b"\0" * 64)
    assert "JSON" in assert_unknown(p)


def test_json_that_is_not_a_tensor_table(tmp_path: Path) -> None:
    p = tmp_path / "bad.safetensors"
    raw = json.dumps({"a": {"dtype": "F16", "shape": "x", "data_offsets": [0, 2]}}).encode()
    p.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 8)
    assert "shape" in assert_unknown(p)


def test_wrong_magic(tmp_path: Path) -> None:
    p = tmp_path / "random.gguf"
    p.write_bytes(b"GGUX" + bytes(range(256)) * 4)
    assert "unknown format" in assert_unknown(p)


def test_text_file(tmp_path: Path) -> None:
    p = tmp_path / "notes.ckpt"
    p.write_text("hello\n" * 100)
    assert_unknown(p)


def test_empty_header(tmp_path: Path) -> None:
    p = tmp_path / "none.safetensors"
    write_safetensors(p, [])
    p.write_bytes(p.read_bytes() + b"\0" * 8)
    assert "no tensors" in assert_unknown(p)


@pytest.mark.parametrize("cut", [3, 7, 20, 30, 60])
def test_truncated_gguf(tmp_path: Path, cut: int) -> None:
    p = tmp_path / "cut.gguf"
    write_gguf(p, [("double_blocks.0.img_attn.qkv.weight", (64, 64))], metadata={"general.name": "x" * 40})
    p.write_bytes(p.read_bytes()[:cut])
    assert_unknown(p)


def test_gguf_claims_too_many_tensors(tmp_path: Path) -> None:
    p = tmp_path / "many.gguf"
    p.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1 << 62, 0) + b"\0" * 64)
    assert "tensors" in assert_unknown(p)


def test_gguf_huge_string(tmp_path: Path) -> None:
    p = tmp_path / "str.gguf"
    p.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 62) + b"k" * 64)
    assert_unknown(p)


def test_gguf_deeply_nested_arrays(tmp_path: Path) -> None:
    p = tmp_path / "deep.gguf"
    body = b"".join(struct.pack("<IIQ", 9, 9, 1) for _ in range(100_000))  # array of array of ...
    p.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1) + b"k" + body[4:] + b"\0" * 64)
    assert_unknown(p)


def test_gguf_version_1(tmp_path: Path) -> None:
    p = tmp_path / "v1.gguf"
    p.write_bytes(b"GGUF" + struct.pack("<IQQ", 1, 0, 0) + b"\0" * 64)
    assert "version 1" in assert_unknown(p)


def test_gguf_unknown_tensor_type(tmp_path: Path) -> None:
    p = tmp_path / "t.gguf"
    write_gguf(p, [("x.weight", (32, 32))], dtype="q8_0")
    raw = bytearray(p.read_bytes())
    i = raw.index(b"x.weight") + len(b"x.weight") + 4 + 16
    raw[i : i + 4] = struct.pack("<I", 31)  # a removed type id
    p.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="unknown ggml type"):
        read_gguf(p)


def test_truncated_data_is_a_warning(tmp_path: Path) -> None:
    """A complete header with missing data (an interrupted download) is readable, and flagged."""
    p = tmp_path / "partial.safetensors"
    size = write_safetensors(
        p,
        [
            ("first_stage_model.decoder.conv_in.weight", (512, 4, 3, 3)),
            ("first_stage_model.decoder.mid.block_1.conv1.weight", (512, 512, 3, 3)),
        ],
    )
    with open(p, "r+b") as f:
        f.truncate(size - 1000)
    info = detect(p)
    assert info.kind == "vae"
    assert any("truncated" in w for w in info.warnings)


def test_safetensors_size_mismatch_is_flagged(tmp_path: Path) -> None:
    p = tmp_path / "mismatch.safetensors"
    header = {"a.weight": {"dtype": "F16", "shape": [4, 4], "data_offsets": [0, 30]}}
    raw = json.dumps(header).encode()
    p.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 30)
    info = detect(p)
    assert any("size mismatch" in w for w in info.warnings)


# --- pickles that try to run code --------------------------------------------------------------


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, 4])
def test_pickle_calling_os_system_in_a_zip(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.ckpt"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"state_dict": _Evil(marker)}, protocol=protocol))
    err = assert_unknown(p)
    assert not marker.exists()
    assert "state_dict" in err


def test_legacy_pickle_calling_os_system(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.pt"
    p.write_bytes(pickle.dumps(_Evil(marker), protocol=2))
    assert_unknown(p)
    assert not marker.exists()


def test_evil_object_next_to_real_tensors_is_never_called(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_Evil(marker), protocol=2)[2:-1]  # the object, without PROTO and STOP
    p = tmp_path / "mixed.ckpt"
    write_torch_zip(
        p,
        [
            ("first_stage_model.decoder.conv_in.weight", (512, 4, 3, 3)),
            ("first_stage_model.decoder.mid.block_1.conv1.weight", (512, 512, 3, 3)),
        ],
        extra=b"X\x04\x00\x00\x00evil" + evil,
    )
    info = detect(p)
    assert not marker.exists()
    assert info.kind == "vae"
    assert info.error is None


def test_pickle_quadratic_bomb_is_refused_quickly() -> None:
    items = b"K\x01" * 200_000
    bomb = b"\x80\x02](" + items + b"e" + b"2" * 200_000 + b"."
    t0 = time.perf_counter()
    with pytest.raises(FormatError):
        parse_state_dict(bomb)
    assert time.perf_counter() - t0 < 10


def test_pickle_deep_nesting_is_refused() -> None:
    depth = 50_000
    deep = b"\x80\x02" + b"}X\x01\x00\x00\x00k" * depth + b"}" + b"s" * depth + b"."
    with pytest.raises(FormatError):
        parse_state_dict(deep)


def test_state_dict_pickle_roundtrip() -> None:
    state = parse_state_dict(state_dict_pickle([("a.weight", (3, 4), "f16"), ("b", (5,), "f32")]))
    assert [(t.name, t.shape, t.dtype) for t in state.tensors] == [("a.weight", (3, 4), "f16"), ("b", (5,), "f32")]
