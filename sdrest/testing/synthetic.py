"""Random-weight model files with exactly the tensors stable-diffusion.cpp expects.

No weights can be downloaded in tests, so tests load these instead: the names and
shapes are those of real models (an SD1.5 checkpoint, an ESRGAN x4, TAESD, a
kohya LoRA, a ControlNet, VAEs, and the Wan2.1 video set: diffusion model, umt5-xxl,
Wan VAE; its two big files are GGUF with random ggml Q4_0 weights), the values are seeded random numbers scaled so
that sd.cpp produces finite, non-constant images from them.

The names and shapes are data, in ``tables/<table>.json``, produced and checked
against sd.cpp's own loader by :mod:`sdrest.testing.derive_tables`. This module
only turns a table into a file: pure Python and numpy, no torch, no safetensors
package.

Every generator writes its file once into the cache (``$SDREST_SYNTHETIC_CACHE``,
else ``~/.cache/sdrest/synthetic``) or into the ``directory`` it is given, and
returns the path; a later call finds the file (its embedded version key matches
the table's) and returns at once. A table change, or a change of the value rules
here, changes the key and the file is rewritten. Files are written to a temporary
name and renamed, under a lock, so concurrent test processes are safe. The bytes
are deterministic: the same table, seed and numpy give the same file.

    >>> from sdrest.testing import synthetic
    >>> ckpt = synthetic.sd1_checkpoint()          # ~2 GB, once
    >>> lora = synthetic.sd1_lora()                # use as <lora:sd1_lora:1>

Run ``python -m sdrest.testing.synthetic [DIR]`` to write them all.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import shutil
import struct
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "GENERATORS",
    "Table",
    "TensorSpec",
    "all_models",
    "cache_dir",
    "esrgan",
    "load_table",
    "materialize",
    "populate_models_dir",
    "sd1_checkpoint",
    "sd1_controlnet",
    "sd1_lora",
    "sd1_vae",
    "taesd",
    "umt5_encoder",
    "wan_diffusion_model",
    "wan_vae",
    "write_safetensors",
    "write_table",
    "wrong_vae",
]

TABLES_DIR = Path(__file__).with_name("tables")
DEFAULT_DTYPE = "F16"
SEED = 1234
# Bump when the value rules below change: it is part of every file's version key.
GENERATOR_VERSION = "1"
METADATA_KEY = "sdrest.synthetic"
_CHUNK = 1 << 22  # elements generated at a time: bounded memory for any tensor
_PTH_ARCHIVE = "archive"

_NP_DTYPES: dict[str, np.dtype[Any]] = {
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
# ggml block-quantized types a GGUF table may use: name -> (ggml type id, block elements, block bytes).
# Q4_0: f16 scale d + 16 bytes of 4-bit q (low nibbles: elements 0..15, high: 16..31), value (q - 8) * d.
# Q8_0: f16 scale d + 32 int8 q, value q * d.
_GGML_QUANT = {"Q4_0": (2, 32, 18), "Q8_0": (8, 32, 34)}
_GGML_TYPE_IDS = {"F32": 0, "F16": 1, **{k: v[0] for k, v in _GGML_QUANT.items()}}
_GGUF_ALIGNMENT = 32
_TORCH_STORAGE = {"F16": "HalfStorage", "F32": "FloatStorage", "F64": "DoubleStorage", "I64": "LongStorage",
                  "I32": "IntStorage"}


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a table: name, shape in PyTorch order, safetensors dtype name."""

    name: str
    shape: tuple[int, ...]
    dtype: str = DEFAULT_DTYPE

    @property
    def numel(self) -> int:
        """Number of elements (1 for a 0-d tensor)."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Size of the data in bytes."""
        if self.dtype in _GGML_QUANT:
            _, block, block_bytes = _GGML_QUANT[self.dtype]
            return self.numel // block * block_bytes
        return self.numel * _NP_DTYPES[self.dtype].itemsize


@dataclass(frozen=True)
class Table:
    """A model file's layout: format, tensors, and what the value rules need."""

    name: str
    fmt: str  # "safetensors" | "pth" | "gguf"
    tensors: tuple[TensorSpec, ...]
    container: str | None = None  # pth: the state dict is nested under this key ("params_ema")
    extra: Mapping[str, Any] = field(default_factory=dict)  # rank, alpha, metadata, ...

    @property
    def key(self) -> str:
        """Version key of the file this table produces (changes with anything that changes the bytes)."""
        canon = json.dumps(
            {
                "fmt": self.fmt,
                "container": self.container,
                "extra": dict(self.extra),
                "tensors": [[t.name, list(t.shape), t.dtype] for t in self.tensors],
                "generator": GENERATOR_VERSION,
                "overrides": sorted([k[1], list(v)] for k, v in OVERRIDES.items() if k[0] == self.name),
                "seed": SEED,
            },
            sort_keys=True,
        )
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    @property
    def file_name(self) -> str:
        """The file name this table is written under."""
        return file_name_for(self.name, self.fmt)

    @property
    def nbytes(self) -> int:
        """Total tensor data in bytes."""
        return sum(t.nbytes for t in self.tensors)


def file_name_for(table: str, fmt: str) -> str:
    """File name of a table's model file (the stem is the table name)."""
    return f"{table}.{fmt if fmt in ('pth', 'gguf') else 'safetensors'}"


@functools.cache
def load_table(name: str) -> Table:
    """Read ``tables/<name>.json``."""
    doc = json.loads((TABLES_DIR / f"{name}.json").read_text())
    default = doc.get("dtype", DEFAULT_DTYPE)
    tensors = tuple(
        TensorSpec(t[0], tuple(int(d) for d in t[1]), t[2] if len(t) > 2 else default) for t in doc["tensors"]
    )
    extra = {k: doc[k] for k in ("rank", "alpha", "strength", "metadata") if k in doc}
    return Table(name=doc["table"], fmt=doc["format"], tensors=tensors, container=doc.get("container"), extra=extra)


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


# Per-tensor exceptions to the rules of _init_rule, so outputs look like a real model's in
# range (not in content): (table, tensor) -> (kind, value[, rows]).
OVERRIDES: dict[tuple[str, str], tuple[Any, ...]] = {
    # SD1 VAE encoder: the mean half of the moments gets the spread of a real SD VAE's latents
    # (std ~5.5, ~1 after the 0.18215 scale), the log-variance half is 0 (posterior std 1).
    # Without this, latents are ~0.1 and img2img at usual strengths ignores the init image.
    ("sd1", "first_stage_model.quant_conv.weight"): ("normal_rows", 9.0 / math.sqrt(8), 4),
    ("sd1_vae", "quant_conv.weight"): ("normal_rows", 9.0 / math.sqrt(8), 4),
    # TAESD and ESRGAN write pixels in [0, 1] directly: centre the last conv on grey.
    ("taesd", "decoder.layers.18.weight"): ("normal", 0.1 / math.sqrt(64 * 9)),
    ("taesd", "decoder.layers.18.bias"): ("const", 0.5),
    ("esrgan_x4", "conv_last.weight"): ("normal", 0.5 / math.sqrt(64 * 9)),
    ("esrgan_x4", "conv_last.bias"): ("const", 0.5),
    # Wan: the 5-d Conv3d patch embedding is stored 4-d in GGUF as (out*in, kt, kh, kw); its real
    # fan-in is in*kt*kh*kw = 16*1*2*2, not the 4 the 4-d shape suggests.
    ("wan", "patch_embedding.weight"): ("normal", 1.0 / 8.0),
}


def _init_rule(table: Table, spec: TensorSpec) -> tuple[Any, ...]:
    """How a tensor is filled: ("ones"|"zeros"|"const"|"normal"|"normal_rows", value or std[, rows]).

    - 1-d ``*.weight`` are normalization scales: 1; 1-d biases: 0.
    - weights of 2+ dimensions: normal with std 1/sqrt(fan_in), fan_in = prod(shape[1:]),
      so every linear/conv layer keeps its activations near unit scale (finite outputs).
    - LoRA: ``alpha`` = the table's alpha (rank: scale 1); ``lora_down`` std 1/sqrt(fan_in),
      ``lora_up`` std strength/sqrt(rank), so the weight delta has about ``strength`` times the
      spread of the weight it patches: a visible change, nowhere near overflow.
    - a few exceptions in :data:`OVERRIDES` (``normal_rows``: normal in the first rows only).
    """
    name, shape = spec.name, spec.shape
    if (table.name, name) in OVERRIDES:
        return OVERRIDES[(table.name, name)]
    if name.endswith(".alpha"):
        return "const", float(table.extra.get("alpha", table.extra.get("rank", 1)))
    if ".lora_down" in name:
        return "normal", 1.0 / math.sqrt(math.prod(shape[1:]))
    if ".lora_up" in name:
        return "normal", float(table.extra.get("strength", 1.0)) / math.sqrt(shape[1])
    if name.endswith(".gamma"):  # Wan VAE RMS norm scales (stored (C,1,1[,1]))
        return "ones", 1.0
    if len(shape) <= 1:
        return ("ones", 1.0) if name.endswith("weight") else ("zeros", 0.0)
    return "normal", 1.0 / math.sqrt(math.prod(shape[1:]))


def _rng(table: Table, name: str) -> np.random.Generator:
    """One generator per tensor, seeded from the table and tensor names: order-independent."""
    return np.random.default_rng([SEED, zlib.crc32(table.name.encode()), zlib.crc32(name.encode())])


def _quant_chunks(table: Table, spec: TensorSpec, kind: str, value: float) -> Iterator[np.ndarray]:
    """Raw blocks (uint8) of a ggml-quantized tensor with random values of std ``value``.

    The quants are drawn directly (no float weights are made and quantized): Q4_0 nibbles
    uniform on 1..15 with 0 mapped to 8, so q - 8 is symmetric on -7..7 (std ~4.18); Q8_0
    int8 uniform on -127..127 (std ~73.6). The per-block scale makes the std ``value``.
    """
    _, block, block_bytes = _GGML_QUANT[spec.dtype]
    nblocks = spec.numel // block
    if kind != "normal":
        raise ValueError(f"{table.name}: {spec.name}: a quantized tensor must be random ({kind})")
    rng = _rng(table, spec.name)
    q_std = 4.1833 if spec.dtype == "Q4_0" else 73.6116
    d = np.frombuffer(np.float16(value / q_std).tobytes(), dtype=np.uint8)
    per = max(1, _CHUNK // block)
    for start in range(0, nblocks, per):
        m = min(per, nblocks - start)
        out = np.empty((m, block_bytes), dtype=np.uint8)
        out[:, :2] = d
        if spec.dtype == "Q4_0":
            b = np.frombuffer(rng.bytes(m * 16), dtype=np.uint8).reshape(m, 16)
            lo = b & 0x0F
            hi = b >> 4
            lo[lo == 0] = 8
            hi[hi == 0] = 8
            out[:, 2:] = lo | (hi << 4)
        else:
            q = rng.integers(-127, 128, size=(m, 32), dtype=np.int8)
            out[:, 2:] = q.view(np.uint8)
        yield out.reshape(-1)


def tensor_chunks(table: Table, spec: TensorSpec) -> Iterator[np.ndarray]:
    """The values of one tensor, flat, in chunks of at most ``_CHUNK`` elements (for a
    ggml-quantized dtype: its raw blocks as uint8)."""
    kind, value, *rest = _init_rule(table, spec)
    if spec.dtype in _GGML_QUANT:
        yield from _quant_chunks(table, spec, kind, value)
        return
    dt = _NP_DTYPES[spec.dtype]
    n = spec.numel
    if kind == "normal_rows":  # small tensors only: generate whole, keep the first rows
        a = _rng(table, spec.name).standard_normal(n, dtype=np.float32) * np.float32(value)
        a.reshape(spec.shape[0], -1)[rest[0] :] = 0
        yield a.astype(dt)
        return
    rng = _rng(table, spec.name) if kind == "normal" else None
    for start in range(0, n, _CHUNK):
        m = min(_CHUNK, n - start)
        if rng is None:
            yield np.full(m, 0.0 if kind == "zeros" else value, dtype=dt)
        else:
            a = rng.standard_normal(m, dtype=np.float32)
            a *= np.float32(value)
            yield a.astype(dt)


def tensor_values(table: Table, name: str) -> np.ndarray:
    """The full values of one tensor of a table (for tests that want to compare)."""
    spec = next(t for t in table.tensors if t.name == name)
    flat = np.concatenate(list(tensor_chunks(table, spec))) if spec.numel else np.zeros(0, _NP_DTYPES[spec.dtype])
    return flat.reshape(spec.shape)


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------


def _safetensors_header(specs: Sequence[TensorSpec], metadata: Mapping[str, str] | None) -> bytes:
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for s in specs:
        header[s.name] = {"dtype": s.dtype, "shape": list(s.shape), "data_offsets": [offset, offset + s.nbytes]}
        offset += s.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # data start 8-byte aligned, as the reference writer does
    return struct.pack("<Q", len(raw)) + raw


def _write_bytes(f: IO[bytes], a: np.ndarray) -> None:
    f.write(np.ascontiguousarray(a).tobytes() if not a.flags.c_contiguous else a.data.cast("B"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[IO[bytes]]:
    """Open a temp file next to ``path``; rename it over ``path`` on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_safetensors(
    path: Path,
    tensors: Iterable[tuple[str, np.ndarray]],
    metadata: dict[str, str] | None = None,
) -> None:
    """Write numpy arrays as a .safetensors file (atomically).

    ``tensors`` is (name, array) pairs, written in that order; arrays are stored in
    little-endian order with their own dtype (float16/32/64, int8/16/32/64, uint8, bool).
    ``metadata`` goes to the header's ``__metadata__`` (string values).
    """
    items = [(name, np.asarray(a)) for name, a in tensors]
    specs: list[TensorSpec] = []
    for name, a in items:
        code = next((k for k, v in _NP_DTYPES.items() if v == a.dtype.newbyteorder("<") or v == a.dtype), None)
        if code is None:
            raise TypeError(f"{name}: dtype {a.dtype} has no safetensors equivalent")
        specs.append(TensorSpec(name, tuple(int(d) for d in a.shape), code))
    with _atomic(Path(path)) as f:
        f.write(_safetensors_header(specs, metadata))
        for (_, a), s in zip(items, specs):
            _write_bytes(f, a.astype(_NP_DTYPES[s.dtype], copy=False))


def _version_stamp(table: Table) -> str:
    return json.dumps({"table": table.name, "key": table.key})


def _torch_pickle(specs: Sequence[TensorSpec], container: str | None) -> bytes:
    """``data.pkl`` of a torch zip checkpoint, as torch.save writes it (protocol 2):
    an OrderedDict of ``torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())``,
    one storage per tensor (``data/<i>``), optionally nested in a plain dict under ``container``."""
    out = bytearray(b"\x80\x02")

    def string(s: str) -> None:
        b = s.encode()
        out.extend(b"X" + struct.pack("<I", len(b)) + b)

    def integer(v: int) -> None:
        if 0 <= v < 256:
            out.extend(b"K" + struct.pack("<B", v))
        elif 0 <= v < 65536:
            out.extend(b"M" + struct.pack("<H", v))
        elif -(2**31) <= v < 2**31:
            out.extend(b"J" + struct.pack("<i", v))
        else:
            out.extend(b"\x8a\x08" + struct.pack("<q", v))

    def glob(module: str, name: str) -> None:
        out.extend(b"c" + f"{module}\n{name}\n".encode())

    def ordered_dict() -> None:
        glob("collections", "OrderedDict")
        out.extend(b")R")

    if container:
        out.extend(b"}")
        string(container)
    ordered_dict()
    out.extend(b"(")
    for i, s in enumerate(specs):
        string(s.name)
        glob("torch._utils", "_rebuild_tensor_v2")
        out.extend(b"((")
        string("storage")
        glob("torch", _TORCH_STORAGE[s.dtype])
        string(str(i))
        string("cpu")
        integer(s.numel)
        out.extend(b"tQ")
        integer(0)
        out.extend(b"(")
        for d in s.shape:
            integer(d)
        out.extend(b"t(")
        stride = 1
        strides = []
        for d in reversed(s.shape):
            strides.append(stride)
            stride *= d
        for st in reversed(strides):
            integer(st)
        out.extend(b"t\x89")
        ordered_dict()
        out.extend(b"tR")
    out.extend(b"u")
    if container:
        out.extend(b"s")
    out.extend(b".")
    return bytes(out)


def _gguf_string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def _gguf_header(table: Table, stamp: str) -> tuple[bytes, list[int]]:
    """GGUF v3 header (two KVs: the version stamp and the file size) padded to the data start,
    and each tensor's padded data size. Shapes are stored in ggml order (reversed)."""
    padded = [s.nbytes + (-s.nbytes % _GGUF_ALIGNMENT) for s in table.tensors]
    infos = bytearray()
    offset = 0
    for s, n in zip(table.tensors, padded):
        if len(s.shape) > 4:
            raise ValueError(f"{table.name}: {s.name}: GGUF holds at most 4 dimensions")
        infos += _gguf_string(s.name) + struct.pack("<I", len(s.shape))
        infos += b"".join(struct.pack("<Q", d) for d in reversed(s.shape))
        infos += struct.pack("<IQ", _GGML_TYPE_IDS[s.dtype], offset)
        offset += n

    def build(size: int) -> bytes:
        head = b"GGUF" + struct.pack("<IQQ", 3, len(table.tensors), 2)
        head += _gguf_string(METADATA_KEY) + struct.pack("<I", 8) + _gguf_string(stamp)  # 8: string
        head += _gguf_string(METADATA_KEY + ".size") + struct.pack("<IQ", 10, size)  # 10: uint64
        head += bytes(infos)
        return head + bytes(-len(head) % _GGUF_ALIGNMENT)

    data_start = len(build(0))
    return build(data_start + offset), padded


def write_table(path: Path, table: Table, zeros: bool = False) -> None:
    """Write the model file of ``table`` to ``path`` (atomically), streaming tensor by tensor.

    ``zeros=True`` writes all-zero data (for a .safetensors file only the header is
    written and the rest is a sparse hole): a quick file for checking names and shapes.
    """
    stamp = _version_stamp(table)
    with _atomic(Path(path)) as f:
        if table.fmt == "safetensors":
            metadata = {METADATA_KEY: stamp, **dict(table.extra.get("metadata", {}))}
            header = _safetensors_header(table.tensors, metadata)
            f.write(header)
            if zeros:
                f.truncate(len(header) + table.nbytes)
            else:
                for spec in table.tensors:
                    for chunk in tensor_chunks(table, spec):
                        _write_bytes(f, chunk)
        elif table.fmt == "gguf":
            header, padded = _gguf_header(table, stamp)
            f.write(header)
            if zeros:
                f.truncate(len(header) + sum(padded))
            else:
                for spec, n in zip(table.tensors, padded):
                    for chunk in tensor_chunks(table, spec):
                        _write_bytes(f, chunk)
                    f.write(bytes(n - spec.nbytes))
        elif table.fmt == "pth":
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
                zf.writestr(f"{_PTH_ARCHIVE}/data.pkl", _torch_pickle(table.tensors, table.container))
                zf.writestr(f"{_PTH_ARCHIVE}/byteorder", "little")
                for i, spec in enumerate(table.tensors):
                    with zf.open(f"{_PTH_ARCHIVE}/data/{i}", "w", force_zip64=spec.nbytes >= 2**31) as w:
                        if zeros:
                            w.write(bytes(spec.nbytes))
                        else:
                            for chunk in tensor_chunks(table, spec):
                                _write_bytes(w, chunk)
                zf.writestr(f"{_PTH_ARCHIVE}/version", "3\n")
                zf.writestr(f"{_PTH_ARCHIVE}/{METADATA_KEY}.json", stamp)
        else:
            raise ValueError(f"{table.name}: unknown format {table.fmt!r}")


def _stamp_of(path: Path) -> str | None:
    """The version stamp embedded in a file written here, or None."""
    try:
        if path.suffix == ".gguf":
            with open(path, "rb") as f:
                magic, _version, _nt, nkv = struct.unpack("<4sIQQ", f.read(24))
                if magic != b"GGUF" or nkv < 2:
                    return None
                values: list[Any] = []
                for kind in (8, 10):
                    (n,) = struct.unpack("<Q", f.read(8))
                    f.read(n)
                    (t,) = struct.unpack("<I", f.read(4))
                    if t != kind:
                        return None
                    if t == 8:
                        (n,) = struct.unpack("<Q", f.read(8))
                        values.append(f.read(n).decode())
                    else:
                        values.append(struct.unpack("<Q", f.read(8))[0])
                if os.fstat(f.fileno()).st_size < values[1]:
                    return None  # truncated
            return values[0]
        if path.suffix == ".pth":
            with zipfile.ZipFile(path) as zf:
                return zf.read(f"{_PTH_ARCHIVE}/{METADATA_KEY}.json").decode()
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100_000_000:
                return None
            header = json.loads(f.read(n))
            size = os.fstat(f.fileno()).st_size
        if size < 8 + n + sum(v["data_offsets"][1] - v["data_offsets"][0] for k, v in header.items()
                              if k != "__metadata__"):
            return None  # truncated
        stamp = header.get("__metadata__", {}).get(METADATA_KEY)
        return stamp if isinstance(stamp, str) else None
    except (OSError, ValueError, KeyError, struct.error, zipfile.BadZipFile):
        return None


# ---------------------------------------------------------------------------------------------
# Cache
# ---------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where synthetic models are cached: ``$SDREST_SYNTHETIC_CACHE``, else
    ``$XDG_CACHE_HOME/sdrest/synthetic`` (``~/.cache/sdrest/synthetic``)."""
    env = os.environ.get("SDREST_SYNTHETIC_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sdrest" / "synthetic"


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An inter-process lock for writing ``path`` (lock files live in the cache, not beside models)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: atomic rename still keeps files whole
        yield
        return
    locks = cache_dir() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
    with open(locks / f"{digest}.lock", "wb") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lf, fcntl.LOCK_UN)


def materialize(table_name: str, directory: Path | None = None) -> Path:
    """Write the model file of ``table_name`` into ``directory`` (default: the cache)
    unless an up-to-date one is there already; return its path."""
    table = load_table(table_name)
    folder = Path(directory) if directory is not None else cache_dir()
    path = folder / table.file_name
    stamp = _version_stamp(table)
    if _stamp_of(path) == stamp:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with _lock(path):
        if _stamp_of(path) != stamp:
            write_table(path, table)
    return path


def sd1_checkpoint(directory: Path | None = None) -> Path:
    """A full SD1.5 checkpoint (``sd1.safetensors``, float16, ~2.1 GB, 1.07 G parameters).

    Original CompVis names: UNet ``model.diffusion_model.*``, CLIP ViT-L/14 text model
    ``cond_stage_model.transformer.text_model.*``, VAE ``first_stage_model.*`` (encoder
    and decoder). sd.cpp detects it as SD 1.x.
    """
    return materialize("sd1", directory)


def sd1_vae(directory: Path | None = None) -> Path:
    """A standalone SD1 VAE (``sd1_vae.safetensors``, LDM names without prefix, like
    ``vae-ft-mse-840000-ema-pruned``): a valid ``--vae`` for the SD1 checkpoint."""
    return materialize("sd1_vae", directory)


def wrong_vae(directory: Path | None = None) -> Path:
    """A VAE that sd.cpp refuses with the SD1 checkpoint (``flux_vae.safetensors``).

    It is a 16-latent-channel VAE in the layout of Flux's ``ae.safetensors`` (no
    quant convs). An SDXL VAE would not do: it has exactly the SD1 VAE's tensor
    shapes, and sd.cpp loads it with an SD1 model without complaint. With this one,
    loading fails: ``tensor 'first_stage_model.decoder.conv_in.weight' has wrong shape
    in model file: got [3, 3, 16, 512], expected [3, 3, 4, 512]`` (ggml order), then
    ``load tensors from model loader failed`` and sd-cli exits with status 1.
    """
    return materialize("flux_vae", directory)


def esrgan(directory: Path | None = None) -> Path:
    """An ESRGAN x4 upscaler (``esrgan_x4.pth``): BasicSR RRDBNet with Real-ESRGAN names
    under ``params_ema``, saved as a torch zip checkpoint (what real ``.pth`` files are).

    sd.cpp infers the number of RRDB blocks from the names (feature width 64 and growth
    32 are fixed), so this one has a single block: ~0.93 M parameters, fast to run.
    """
    return materialize("esrgan_x4", directory)


def taesd(directory: Path | None = None) -> Path:
    """TAESD for SD1 (``taesd.safetensors``, ``encoder.layers.*`` and ``decoder.layers.*``),
    for ``--taesd``."""
    return materialize("taesd", directory)


def sd1_lora(directory: Path | None = None) -> Path:
    """A kohya-style SD1 LoRA (``sd1_lora.safetensors``; prompt it as ``<lora:sd1_lora:1>``).

    Rank 4, alpha 4, on the attention projections of three UNet transformer blocks (plus
    the 1x1 conv ``proj_in`` of one of them) and on CLIP layer 0 (attention, ``mlp.fc1``).
    sd.cpp applies all of its tensors; the weight delta is as large as the weights it
    patches, so the output changes visibly.
    """
    return materialize("sd1_lora", directory)


def sd1_controlnet(directory: Path | None = None) -> Path:
    """An SD1.x ControlNet (``sd1_controlnet.safetensors``, ``control_model.*`` names),
    for ``--control-net`` with a control image."""
    return materialize("sd1_controlnet", directory)


GENERATORS: dict[str, Callable[[Path | None], Path]] = {
    "sd1_checkpoint": sd1_checkpoint,
    "sd1_vae": sd1_vae,
    "wrong_vae": wrong_vae,
    "esrgan": esrgan,
    "taesd": taesd,
    "sd1_lora": sd1_lora,
    "sd1_controlnet": sd1_controlnet,
}

# models dir sub-folder of each generator (the folder names sdrest's models registry knows)
MODELS_DIR_LAYOUT: dict[str, str] = {
    "sd1_checkpoint": "checkpoints",
    "sd1_vae": "vae",
    "wrong_vae": "vae",
    "esrgan": "esrgan",
    "taesd": "taesd",
    "sd1_lora": "lora",
    "sd1_controlnet": "controlnet",
}


def all_models(directory: Path | None = None) -> dict[str, Path]:
    """Write every synthetic model (into ``directory`` or the cache); generator name -> path."""
    return {name: fn(directory) for name, fn in GENERATORS.items()}


def wan_diffusion_model(directory: Path | None = None) -> Path:
    """A Wan2.1 T2V 1.3B diffusion model (``wan.gguf``, ~0.8 GB), for ``--diffusion-model``.

    sd.cpp takes only the layer count from the file (30 layers: Wan2.1 1.3B; dim 1536, FFN
    8960, 12 heads are fixed), so this is full size: 1.42 G parameters, the linear weights
    ggml Q4_0 (random quants), the rest F32/F16. The 5-d Conv3d ``patch_embedding`` is stored
    4-d, ``(out*in, kt, kh, kw)``, as GGUF allows no more. Original Wan names, no prefix.
    """
    return materialize("wan", directory)


def umt5_encoder(directory: Path | None = None) -> Path:
    """A umt5-xxl encoder (``umt5.gguf``, ~3.3 GB), the text encoder Wan wants (``--t5xxl``).

    sd.cpp fixes its size (24 layers, width 4096, FFN 10240, 64 heads, 256384-token
    vocabulary, a relative attention bias in every layer), so it is full size: 5.7 G
    parameters, the linear weights and the embedding ggml Q4_0. Hugging Face T5 names.
    """
    return materialize("umt5", directory)


def wan_vae(directory: Path | None = None) -> Path:
    """The Wan2.1 VAE (``wan_vae.safetensors``, float16, ~250 MB), for ``--vae`` with Wan:
    causal 3-d convs, base width 96, 16 latent channels (encoder and decoder; sd.cpp fixes
    its size)."""
    return materialize("wan_vae", directory)


# the Wan video set (~4.4 GB): not part of GENERATORS, so populate_models_dir and
# all_models stay as cheap as before; write it with ``python -m sdrest.testing.synthetic --wan``
WAN_GENERATORS: dict[str, Callable[[Path | None], Path]] = {
    "wan_diffusion_model": wan_diffusion_model,
    "umt5_encoder": umt5_encoder,
    "wan_vae": wan_vae,
}


def _link(src: Path, dst: Path) -> None:
    """Hard link, else symlink, else copy ``src`` to ``dst`` (replacing ``dst``)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.link")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        try:
            os.symlink(src.resolve(), tmp)
        except OSError:
            shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def populate_models_dir(root: Path, which: Iterable[str] | None = None) -> dict[str, Path]:
    """Lay the cached models out as a models dir under ``root`` (``checkpoints/sd1.safetensors``,
    ``lora/sd1_lora.safetensors``, ``vae/``, ``taesd/``, ``esrgan/``, ``controlnet/``).

    Files are hard links to the cache where possible (else symlinks, else copies), so
    this is cheap per test. ``which`` picks generator names (default: all).
    """
    out: dict[str, Path] = {}
    for name in which if which is not None else GENERATORS:
        src = GENERATORS[name](None)
        dst = Path(root) / MODELS_DIR_LAYOUT[name] / src.name
        _link(src, dst)
        out[name] = dst
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sdrest.testing.synthetic [DIR]``: write every model, print the paths."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print("usage: python -m sdrest.testing.synthetic [--wan] [DIR]\n\n"
              f"Writes every synthetic model into DIR (default: {cache_dir()}) and prints the paths;\n"
              "--wan adds the Wan video set (~4.4 GB).")
        return 0
    wan = "--wan" in args
    args = [a for a in args if a != "--wan"]
    directory = Path(args[0]) if args else None
    for name, fn in {**GENERATORS, **(WAN_GENERATORS if wan else {})}.items():
        t0 = time.monotonic()
        path = fn(directory)
        size = path.stat().st_size
        print(f"{name:16s} {path}  ({size / 1e6:.1f} MB, {time.monotonic() - t0:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
