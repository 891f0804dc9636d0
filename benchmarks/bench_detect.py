"""Benchmark: header-only detection of 20 GB files, and rescans of a 1000-file models dir.

    python benchmarks/bench_detect.py [--size-gb 20] [--files 1000] [--repeat 20]

Writes sparse files (header written, data left as a hole) to a temporary folder,
so the "20 GB" files cost a few MB of disk. For each case it prints the time per
file and the bytes read, counted twice: by the readers themselves
(``ModelInfo.bytes_read``) and by the kernel (``rchar`` in ``/proc/self/io``,
everything this process read). Bytes read staying near the header size, orders
of magnitude below the file size, is the proof that tensor data is never read.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this working tree's code

from sdrest.models import detect
from sdrest.models.registry import Registry
from sdrest.testing.headers import write_gguf, write_safetensors

GB = 1_000_000_000


def rchar() -> int:
    """Bytes this process has read through read() calls so far (Linux), or -1."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def flux_tensors(dtype: str) -> list[tuple[str, tuple[int, ...], str]]:
    """The tensor table of a Flux-dev-sized transformer (19 double, 38 single blocks)."""
    h, mlp = 3072, 12288
    vec = "f32" if dtype == "q8_0" else "bf16"
    t: list[tuple[str, tuple[int, ...], str]] = [
        ("img_in.weight", (h, 64), dtype),
        ("img_in.bias", (h,), vec),
        ("txt_in.weight", (h, 4096), dtype),
        ("txt_in.bias", (h,), vec),
        ("time_in.in_layer.weight", (h, 256), dtype),
        ("time_in.out_layer.weight", (h, h), dtype),
        ("vector_in.in_layer.weight", (h, 768), dtype),
        ("vector_in.out_layer.weight", (h, h), dtype),
        ("guidance_in.in_layer.weight", (h, 256), dtype),
        ("guidance_in.out_layer.weight", (h, h), dtype),
        ("final_layer.adaLN_modulation.1.weight", (2 * h, h), dtype),
        ("final_layer.linear.weight", (64, h), dtype),
    ]
    for i in range(19):
        for side in ("img", "txt"):
            p = f"double_blocks.{i}.{side}_"
            t += [
                (p + "mod.lin.weight", (6 * h, h), dtype),
                (p + "mod.lin.bias", (6 * h,), vec),
                (p + "attn.qkv.weight", (3 * h, h), dtype),
                (p + "attn.qkv.bias", (3 * h,), vec),
                (p + "attn.norm.query_norm.scale", (128,), vec),
                (p + "attn.norm.key_norm.scale", (128,), vec),
                (p + "attn.proj.weight", (h, h), dtype),
                (p + "attn.proj.bias", (h,), vec),
                (p + "mlp.0.weight", (mlp, h), dtype),
                (p + "mlp.0.bias", (mlp,), vec),
                (p + "mlp.2.weight", (h, mlp), dtype),
                (p + "mlp.2.bias", (h,), vec),
            ]
    for i in range(38):
        p = f"single_blocks.{i}."
        t += [
            (p + "linear1.weight", (3 * h + mlp, h), dtype),
            (p + "linear1.bias", (3 * h + mlp,), vec),
            (p + "linear2.weight", (h, h + mlp), dtype),
            (p + "linear2.bias", (h,), vec),
            (p + "norm.query_norm.scale", (128,), vec),
            (p + "norm.key_norm.scale", (128,), vec),
            (p + "modulation.lin.weight", (3 * h, h), dtype),
            (p + "modulation.lin.bias", (3 * h,), vec),
        ]
    return t


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, int]:
    """Median seconds per call, and kernel bytes read per call."""
    fn()  # warm the page cache and the interpreter
    times = []
    r0 = rchar()
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    r1 = rchar()
    return statistics.median(times), (r1 - r0) // repeat if r0 >= 0 else -1


def fmt_bytes(n: int) -> str:
    """Human-readable bytes (powers of 1000); "n/a" for a negative count (no /proc/self/io)."""
    if n < 0:
        return "n/a"
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=20.0, help="apparent size of the big files (GB)")
    ap.add_argument("--files", type=int, default=1000, help="files in the rescan benchmark")
    ap.add_argument("--repeat", type=int, default=20, help="timed repetitions per case")
    args = ap.parse_args(argv)
    size = int(args.size_gb * GB)
    tmp = Path(tempfile.mkdtemp(prefix="sdrest-bench-"))
    rows: list[tuple[str, str, str, str, str, str]] = []
    try:
        gguf = tmp / "flux1-dev-q8_0.gguf"
        write_gguf(gguf, flux_tensors("q8_0"), metadata={"general.name": "flux1-dev"}, size=size)
        st = tmp / "flux1-dev-fp8.safetensors"
        write_safetensors(st, flux_tensors("f8_e4m3"), size=size)
        for path in (gguf, st):
            info = detect(path)
            assert info.architecture == "Flux" and info.size == size, info
            sec, kernel = timed(functools.partial(detect, path), args.repeat)
            rows.append(
                (
                    f"detect {path.suffix[1:]} ({info.tensor_count} tensors)",
                    fmt_bytes(info.size),
                    f"{sec * 1000:.2f} ms",
                    fmt_bytes(info.header_bytes),
                    fmt_bytes(info.bytes_read),
                    fmt_bytes(kernel),
                )
            )
        # a models dir of N header-only files of several kinds
        root = tmp / "models"
        kinds: dict[str, list[tuple[str, tuple[int, ...], str]]] = {
            "diffusion_models": flux_tensors("q8_0")[:40],
            "lora": [
                ("lora_unet_double_blocks_0_img_attn_proj.lora_down.weight", (16, 3072), "f16"),
                ("lora_unet_double_blocks_0_img_attn_proj.lora_up.weight", (3072, 16), "f16"),
            ],
            "vae": [
                ("decoder.conv_in.weight", (512, 16, 3, 3), "f16"),
                ("decoder.mid.block_1.conv1.weight", (512, 512, 3, 3), "f16"),
            ],
            "text_encoders": [
                ("text_model.embeddings.token_embedding.weight", (49408, 768), "f16"),
                ("text_model.encoder.layers.0.mlp.fc1.weight", (3072, 768), "f16"),
            ],
        }
        for i in range(args.files):
            folder = list(kinds)[i % len(kinds)]
            (root / folder).mkdir(parents=True, exist_ok=True)
            specs = kinds[folder]
            if i % 2:
                write_gguf(
                    root / folder / f"m{i:05d}.gguf",
                    specs if folder == "diffusion_models" else [(n, s, "f16") for n, s, _ in specs],
                )
            else:
                write_safetensors(root / folder / f"m{i:05d}.safetensors", [(n, s, "f16") for n, s, _ in specs])
        total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        cache = tmp / "cache.json"
        r0 = rchar()
        t0 = time.perf_counter()
        reg = Registry(root, cache_path=cache)
        first = reg.scan()
        cold = time.perf_counter() - t0
        cold_read = rchar() - r0
        assert len(first.added) == args.files
        read_by_readers = sum(e.info.bytes_read for e in reg.entries())
        rows.append(
            (
                f"first scan, {args.files} files",
                fmt_bytes(total),
                f"{cold * 1000:.0f} ms ({cold / args.files * 1e6:.0f} us/file)",
                "",
                fmt_bytes(read_by_readers),
                fmt_bytes(cold_read),
            )
        )
        sec, kernel = timed(reg.scan, args.repeat)
        rows.append(
            (
                f"rescan, {args.files} unchanged",
                fmt_bytes(total),
                f"{sec * 1000:.1f} ms ({sec / args.files * 1e6:.1f} us/file)",
                "",
                "0 B",
                fmt_bytes(kernel),
            )
        )

        def restart() -> None:
            r = Registry(root, cache_path=cache)
            assert not r.scan().added

        sec, kernel = timed(restart, max(3, args.repeat // 4))
        rows.append(
            (
                "restart + rescan (disk cache)",
                fmt_bytes(total),
                f"{sec * 1000:.1f} ms ({sec / args.files * 1e6:.1f} us/file)",
                "",
                "0 B",
                fmt_bytes(kernel),
            )
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    headers = ("case", "file size", "time", "header", "read (readers)", "read (kernel rchar)")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print(
        f"\npython {sys.version.split()[0]}, {args.repeat} repetitions, median time; "
        "kernel bytes are per call and include the cache file for the restart case"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
