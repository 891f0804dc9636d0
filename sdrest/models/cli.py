"""``sdrest detect FILE...`` and ``sdrest models [DIR]``.

``detect`` prints what each file is (a table, or JSON with ``--json``);
``models`` scans a models dir and prints one line per model: id, kind,
architecture, quantization, size, and the companions it still lacks (after
looking for them in the same folder).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from sdrest.models.companions import resolve
from sdrest.models.detect import KINDS, ModelInfo, detect
from sdrest.models.registry import LINK_POLICIES, Registry

__all__ = ["format_table", "human_size", "register", "run_detect", "run_models"]


def register(subparsers: Any) -> None:
    """Add the ``detect`` and ``models`` subcommands to the ``sdrest`` parser."""
    p = subparsers.add_parser("detect", help="tell what model files are, from their headers")
    p.add_argument("files", nargs="+", metavar="FILE", help="model files or diffusers folders")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_detect)

    m = subparsers.add_parser("models", help="list the models of a models dir")
    m.add_argument(
        "dir",
        nargs="?",
        default=os.environ.get("SDREST_MODELS_DIR", "models"),
        metavar="DIR",
        help="the models dir (default: $SDREST_MODELS_DIR or ./models)",
    )
    m.add_argument("--json", action="store_true", help="print JSON instead of a table")
    m.add_argument("--kind", choices=KINDS, help="only this kind")
    m.add_argument("--arch", metavar="NAME", help="only this architecture (or models that fit it)")
    m.add_argument("--search", metavar="WORDS", help="only models whose id/kind/architecture match every word")
    m.add_argument(
        "--sort",
        default="id",
        choices=("id", "name", "kind", "architecture", "size", "mtime", "parameters", "quantization"),
    )
    m.add_argument("--desc", action="store_true", help="sort descending")
    m.add_argument("--cache", metavar="FILE", help="keep detection results in this JSON file between runs")
    m.add_argument(
        "--links",
        default=os.environ.get("SDREST_MODELS_LINKS", "follow"),
        choices=LINK_POLICIES,
        help="follow every link, or only those leading inside DIR (default: $SDREST_MODELS_LINKS or follow)",
    )
    m.set_defaults(func=run_models)


def human_size(n: int) -> str:
    """Bytes as ``1.5 GB`` (powers of 1000, as model sites show them)."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _detect_row(info: ModelInfo) -> list[str]:
    note = info.error or ", ".join(info.missing_companions) or ""
    return [
        info.path,
        info.kind,
        info.architecture or "-",
        info.load_as or "-",
        info.quantization or "-",
        human_size(info.size),
        note,
    ]


def run_detect(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``sdrest detect``: exit 0 when every file was read, 1 when one could not be."""
    out = out or sys.stdout
    infos = []
    for f in args.files:
        if not os.path.exists(f):
            print(f"sdrest: error: {f}: no such file", file=sys.stderr)
            return 1
        infos.append(detect(f))
    if args.json:
        json.dump([i.to_dict() for i in infos], out, indent=2)
        out.write("\n")
    else:
        headers = ["file", "kind", "architecture", "load as", "quant", "size", "needs / error"]
        out.write(format_table(headers, [_detect_row(i) for i in infos]) + "\n")
    return 1 if any(i.error for i in infos) else 0


def run_models(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``sdrest models``: scan a models dir and list it (files that are not models go to stderr)."""
    out = out or sys.stdout
    registry = Registry(args.dir, cache_path=args.cache, links=args.links)
    report = registry.scan()
    page = registry.search(args.search, kind=args.kind, architecture=args.arch, sort=args.sort, descending=args.desc)
    missing: dict[str, list[str]] = {}
    for e in page.items:
        if e.kind in ("checkpoint", "diffusion_model") and e.architecture is not None:
            missing[e.id] = resolve(registry, e.id).missing
    if args.json:
        data = []
        for e in page.items:
            d = e.to_dict()
            d["missing_companions"] = missing.get(e.id, [])
            data.append(d)
        skipped = [s.to_dict() for s in report.skipped]
        json.dump({"root": str(registry.root), "total": page.total, "models": data, "skipped": skipped}, out, indent=2)
        out.write("\n")
        return 0
    rows = []
    for e in page.items:
        note = ", ".join(missing.get(e.id, []))
        if e.mismatch:
            note = f"{note}; {e.mismatch}" if note else e.mismatch
        elif e.info.error:
            note = e.info.error
        rows.append([e.id, e.kind, e.architecture or "-", e.info.quantization or "-", human_size(e.size), note])
    headers = ["id", "kind", "architecture", "quant", "size", "missing / notes"]
    out.write(format_table(headers, rows) + "\n")
    out.write(f"{page.total} model(s) in {registry.root}\n")
    for refused in report.skipped:
        sys.stderr.write(f"skipped {refused.rel_path}: {refused.reason}\n")
    return 0
