"""Search sd.cpp's parameter space for inputs that crash the process.

Usage::

    python -m sdrest.testing.crash_search                 # everything (slow: tens of minutes on 2 cores)
    python -m sdrest.testing.crash_search --group matrix  # sampler x scheduler x steps {1,2,3} x batch {1,2}
    python -m sdrest.testing.crash_search --group edges   # edge values of every numeric generation field
    python -m sdrest.testing.crash_search --match gits --limit 4 --jobs 1 --json out.json

Every case runs in a child process (``--worker`` mode of this module) that loads the synthetic SD1
checkpoint (:func:`sdrest.testing.synthetic.sd1_checkpoint`), so a crash ends that child, never the
search. By default a child runs cases one after another until one of them fails inside sd.cpp (a
crash, a timeout or a ``NativeError``); a crash is then confirmed by running that case again alone in
a fresh child, and the confirmed outcome is what the table shows. ``--fresh`` starts a fresh child
for every case instead (strict isolation, several seconds more per case).

Two layers are searched:

- ``native``: the C parameter dict goes to ``_native.Context.generate_image`` as is, bypassing
  every check of the library: it finds what sd.cpp itself does with a value;
- ``library``: the same intent through ``StableDiffusion.txt2img``/``img2img``, checks included:
  it must never crash (a refused value is an ``error`` row: ``ValueError``/``TypeError``).

The matrix runs in the native layer, and a combination that does not come back ``ok`` runs again
through the library to show whether the library refuses it. The edge values run in both layers: every
numeric leaf of sd.cpp's ``sd_img_gen_params_t`` (read from ``_native.default_img_gen_params()``) for
the native layer, every numeric keyword of :class:`sdrest.ImageOptions` (plus ``img2img``'s
``strength`` and the numeric settings of ``hires``, ``vae_tiling`` and ``cache``) for the library.
Sampler and scheduler names come from :func:`sdrest.samplers` / :func:`sdrest.schedulers`.

Outcomes: ``ok`` (images came back; ``uniform`` notes an image of one colour, e.g. from NaNs),
``error`` (a Python exception, with its type and message), ``crash`` (the child died from a signal,
named, with the last lines it printed), ``timeout`` (killed after ``--timeout`` seconds). Each child
runs with an address-space limit (``--memory-gb``) so a huge allocation fails instead of pushing a
shared machine into the OOM killer. The exit status is 1 when any library-layer case crashed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import queue
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

INT_MAX = 2**31 - 1
HUGE_FLOAT = 1e30
#: image sides: too small, not a multiple of 8, the library's bound, beyond anything
SIDES = (0, 1, 7, 8, 63, 100, -8, 16384, INT_MAX)
INT_VALUES: tuple[Any, ...] = (0, -1, INT_MAX, -(2**31))
FLOAT_VALUES: tuple[Any, ...] = (0.0, -1.0, HUGE_FLOAT, math.nan, math.inf, -math.inf)
#: what the library layer also tries on integer keywords (it must refuse them)
NON_INT_VALUES: tuple[Any, ...] = (math.nan, math.inf)
SEQUENCE_VALUES: tuple[Any, ...] = ([], [0.0], [-1.0], [HUGE_FLOAT], [math.nan], [math.inf], [14.6, 0.0])
SIDE_FIELDS = {"width", "height", "target_width", "target_height"}
#: the tiling cases: a 128x128 image (16x16 latent) decoded in overlapping 8x8 tiles, so tiles blend
TILED: dict[str, Any] = {"width": 128, "height": 128, "vae_tiling_params.tile_size_x": 8,
                         "vae_tiling_params.tile_size_y": 8}
#: the base of every case: small, fast, reproducible
BASE_LIBRARY: dict[str, Any] = {"width": 64, "height": 64, "steps": 2, "sampler": "euler", "seed": 42}
MATRIX_STEPS = (1, 2, 3)
MATRIX_BATCHES = (1, 2)


@dataclasses.dataclass(frozen=True)
class Case:
    """One generation to try: ``options`` are C field paths (native layer) or keywords (library layer)."""

    name: str
    layer: str  # "native" or "library"
    call: str  # "txt2img" or "img2img"
    options: dict[str, Any]
    group: str = "edges"

    def to_json(self) -> str:
        """The case as one JSON line (NaN and infinities included)."""
        return json.dumps(dataclasses.asdict(self))


@dataclasses.dataclass
class Outcome:
    """What a case did."""

    case: Case
    outcome: str  # ok | error | crash | timeout
    detail: str = ""
    seconds: float = 0.0
    library: Optional["Outcome"] = None  # the library layer's outcome of a native matrix case


# -- cases ---------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    if isinstance(value, float) and abs(value) >= 1e6:
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return repr(value)


def _native_leaves(params: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted C path, default) of every int/float/list-of-numbers leaf of a C parameter dict."""
    for key, value in params.items():
        path = prefix + key
        if isinstance(value, Mapping):
            yield from _native_leaves(value, path + ".")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield path, value
        elif isinstance(value, list) and key in ("custom_sigmas", "layers"):
            yield path, value


def _native_extras(path: str) -> dict[str, Any]:
    """What a native leaf needs to take effect (an init image for strength, the enabling switch of a group)."""
    if path == "strength":
        return {"init_image": "gray", "mask_image": "white"}
    group = path.split(".")[0]
    if group == "vae_tiling_params" and not path.endswith(".enabled"):
        # at 64x64 the latent fits in one tile and nothing is blended: make several small tiles
        return {"vae_tiling_params.enabled": True, **TILED}
    if group == "hires" and not path.endswith(".enabled"):
        return {"hires.enabled": True}
    if group == "cache" and path != "cache.mode":
        from sdrest import names

        return {"cache.mode": names.cache_mode_table()["ucache"]}
    return {}


def native_edge_cases() -> list[Case]:
    """Edge values of every numeric leaf of ``sd_img_gen_params_t``, straight to sd.cpp."""
    from sdrest import _native

    cases = []
    for path, default in _native_leaves(_native.default_img_gen_params()):
        leaf = path.rsplit(".", 1)[-1]
        if leaf in SIDE_FIELDS:
            values: Sequence[Any] = SIDES
        elif isinstance(default, list):
            values = SEQUENCE_VALUES if leaf == "custom_sigmas" else ([-1], [INT_MAX], [0, 1000])
        elif isinstance(default, int):
            values = INT_VALUES
        else:
            values = FLOAT_VALUES
        for value in values:
            options = {**_native_extras(path), path: value}
            cases.append(Case(f"{path}={_fmt(value)}", "native", "txt2img", options))
    return cases


def _numeric_kind(annotation: Any) -> Optional[str]:
    """'int', 'float', 'ints', 'floats' for a numeric keyword annotation, None otherwise."""
    if annotation is bool:
        return None
    if annotation is int:
        return "int"
    if annotation is float:
        return "float"
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Union and len(args) == 1:
        return _numeric_kind(args[0])
    if origin is not None and args and str(origin).endswith("Sequence'>") and args[0] in (int, float):
        return "ints" if args[0] is int else "floats"
    return None


def _library_values(name: str, kind: str) -> Sequence[Any]:
    if name in SIDE_FIELDS:
        return SIDES + NON_INT_VALUES
    if kind == "int":
        return INT_VALUES + NON_INT_VALUES
    if kind == "float":
        return FLOAT_VALUES
    if kind == "floats":
        return SEQUENCE_VALUES
    return ([-1], [INT_MAX], [0, 1000], [math.nan])


def library_edge_cases() -> list[Case]:
    """Edge values of every numeric keyword of txt2img (and img2img's ``strength``), checks included."""
    from sdrest import _native
    from sdrest.options import ImageOptions

    cases = []
    hints = typing.get_type_hints(ImageOptions)
    for name, annotation in hints.items():
        kind = _numeric_kind(annotation)
        if kind is None:
            continue
        for value in _library_values(name, kind):
            cases.append(Case(f"{name}={_fmt(value)}", "library", "txt2img", {name: value}))
    for value in FLOAT_VALUES:
        cases.append(Case(f"strength={_fmt(value)}", "library", "img2img", {"strength": value}))
    defaults = _native.default_img_gen_params()
    for keyword, c_group in (("hires", "hires"), ("vae_tiling", "vae_tiling_params"), ("cache", "cache")):
        for path, default in _native_leaves(defaults[c_group]):
            if keyword == "cache" and path == "mode":
                continue  # a name in the library; the cases below run with the UNet's step cache on
            kind = "int" if isinstance(default, int) else "float"
            for value in _library_values(path, kind):
                settings = {path: value}
                options: dict[str, Any] = {keyword: settings}
                if keyword == "cache":
                    settings["mode"] = "ucache"
                if keyword == "vae_tiling":
                    settings.update({k.split(".")[1]: v for k, v in TILED.items() if "." in k and k.split(".")[1] != path})
                    options.update(width=TILED["width"], height=TILED["height"])
                cases.append(Case(f"{keyword}.{path}={_fmt(value)}", "library", "txt2img", options))
    return cases


def matrix_cases() -> list[Case]:
    """Every sampler x scheduler x steps x batch at 64x64, in the native layer."""
    import sdrest
    from sdrest import names

    cases = []
    for sampler in sdrest.samplers():
        for scheduler in sdrest.schedulers():
            for steps in MATRIX_STEPS:
                for batch in MATRIX_BATCHES:
                    options = {"sample_params.sample_method": names.sampler_table()[sampler],
                               "sample_params.scheduler": names.scheduler_table()[scheduler],
                               "sample_params.sample_steps": steps, "batch_count": batch,
                               "sample_params.guidance.txt_cfg": 1.0}
                    name = f"{sampler} {scheduler} steps={steps} batch={batch}"
                    cases.append(Case(name, "native", "txt2img", options, group="matrix"))
    return cases


MATRIX_KEYS = ("sample_params.sample_method", "sample_params.scheduler", "sample_params.sample_steps", "batch_count",
               "sample_params.guidance.txt_cfg")


def library_twin(case: Case) -> Optional[Case]:
    """The library-layer equivalent of a native matrix case (``None`` for any other case)."""
    from sdrest import names

    opts = case.options
    if case.layer != "native" or any(key not in opts for key in MATRIX_KEYS):
        return None
    samplers = {v: k for k, v in names.sampler_table().items()}
    schedulers = {v: k for k, v in names.scheduler_table().items()}
    keywords = {"sampler": samplers[opts["sample_params.sample_method"]],
                "scheduler": schedulers[opts["sample_params.scheduler"]],
                "steps": opts["sample_params.sample_steps"], "batch_count": opts["batch_count"],
                "cfg_scale": opts["sample_params.guidance.txt_cfg"]}
    return Case(case.name, "library", "txt2img", keywords, group=case.group)


def priority(case: Case) -> tuple[int, int, int]:
    """Run order: the matrix at one step first, then the edge values, then the rest of the matrix.

    A search cut short (``--limit``, a slow machine) has then covered what crashes most often.
    """
    if case.group == "matrix":
        steps, batch = case.options["sample_params.sample_steps"], case.options["batch_count"]
        return (0 if (steps, batch) == (1, 1) else 3, steps, batch)
    return (1 if case.layer == "native" else 2, 0, 0)


def all_cases(groups: Iterable[str]) -> list[Case]:
    """The cases of the named groups (``edges``, ``matrix``), in :func:`priority` order."""
    cases: list[Case] = []
    for group in groups:
        if group == "edges":
            cases += native_edge_cases() + library_edge_cases()
        elif group == "matrix":
            cases += matrix_cases()
        else:
            raise ValueError(f"group: unknown group {group!r}; expected edges or matrix")
    return sorted(cases, key=priority)


# -- the child ---------------------------------------------------------------------------------


def _set_path(params: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        params = params[key]
    params[leaf] = value


def _image(kind: str, channels: int) -> Any:
    import numpy as np

    fill = 128 if kind == "gray" else 255
    shape = (64, 64, channels) if channels > 1 else (64, 64)
    return np.full(shape, fill, dtype=np.uint8)


def run_case(sd: Any, case: Case) -> dict[str, Any]:
    """Run ``case`` on the loaded ``StableDiffusion``; what came back (exceptions propagate)."""
    from sdrest import _native

    if case.layer == "native":
        params = _native.default_img_gen_params()
        params.update(prompt="x", negative_prompt="", width=64, height=64, seed=42)
        params["sample_params"]["sample_steps"] = BASE_LIBRARY["steps"]
        params["sample_params"]["sample_method"] = _native.sample_method_from_name(BASE_LIBRARY["sampler"])
        for path, value in case.options.items():
            if path == "init_image":
                value = _image(value, 3)
            elif path == "mask_image":
                value = _image(value, 1)
            _set_path(params, path, value)
        arrays = sd._context().generate_image(params, None, None, {"mode": 0, "interval": 1})
    else:
        options = {**BASE_LIBRARY, **case.options}
        if case.call == "img2img":
            arrays = list(sd.img2img(_image("gray", 3), "x", **options).images)
        else:
            arrays = list(sd.txt2img("x", **options).images)
    import numpy as np

    images = [np.asarray(a) for a in arrays]
    uniform = sum(1 for a in images if a.size and (a == a.flat[0]).all())
    return {"images": len(images), "uniform": uniform}


def worker_main(model: str, memory_gb: float, taesd: Optional[str] = None) -> int:
    """The child: load the model, then run the JSON cases read from stdin, one result line each."""
    if memory_gb > 0:
        limit = int(memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    results = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever sd.cpp or ggml prints goes to stderr, never into the results
    import logging

    import sdrest

    logging.getLogger("sdrest.native").setLevel(logging.ERROR)
    sd = sdrest.StableDiffusion(model, n_threads=1, taesd=taesd)
    results.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        case = Case(**json.loads(line))
        sys.stderr.write(f"== case {case.layer} {case.name}\n")
        sys.stderr.flush()
        started = time.monotonic()
        try:
            info = run_case(sd, case)
            result = {"outcome": "ok", "detail": f"{info['images']} images"
                      + (f", {info['uniform']} uniform" if info["uniform"] else "")}
        except Exception as exc:  # noqa: BLE001 - every Python error is an outcome to report
            message = " ".join(line.strip() for line in str(exc).strip().splitlines())
            result = {"outcome": "error", "detail": f"{type(exc).__name__}: {message}"[:300],
                      "native": type(exc).__name__ == "NativeError"}
        result["seconds"] = time.monotonic() - started
        results.write(json.dumps(result) + "\n")
    return 0


# -- the parent ----------------------------------------------------------------------------------


def _child_env() -> dict[str, str]:
    """The environment of a child: it imports the same sdrest as this process.

    ``PYTHONSAFEPATH`` keeps the working directory off the child's ``sys.path``: from a source
    checkout, ``./sdrest`` (without the compiled extension) must not shadow the package in use.
    """
    import sdrest

    package_root = str(Path(sdrest.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONSAFEPATH": "1"}


class Child:
    """One worker process and its pipes; stderr goes to a temporary file for post-mortems."""

    def __init__(self, model: Path, memory_gb: float, start_timeout: float, taesd: Optional[Path] = None) -> None:
        self.log = tempfile.TemporaryFile()
        self.taesd = taesd
        extra = ["--taesd", str(taesd)] if taesd is not None else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sdrest.testing.crash_search", "--worker", "--model", str(model),
             "--memory-gb", str(memory_gb), *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1, env=_child_env(),
        )
        self.selector = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        ready = self._read(start_timeout)
        if ready is None or not ready.get("ready"):
            tail = self.tail()
            self.kill()
            raise RuntimeError(f"the worker did not start: {tail}")

    def _read(self, timeout: float) -> Optional[dict[str, Any]]:
        assert self.proc.stdout is not None
        self.timed_out = not self.selector.select(timeout)
        if self.timed_out:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def run(self, case: Case, timeout: float) -> Outcome:
        """Send ``case``, wait for its result, the child's death or the timeout."""
        assert self.proc.stdin is not None
        started = time.monotonic()
        try:
            self.proc.stdin.write(case.to_json() + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        result = self._read(timeout)
        seconds = time.monotonic() - started
        if result is not None:
            return Outcome(case, result["outcome"], result["detail"], result["seconds"])
        try:
            self.proc.wait(timeout=0 if self.timed_out else 30)  # EOF: the child is dying, reap it
        except subprocess.TimeoutExpired:
            self.kill()
            return Outcome(case, "timeout", f"killed after {timeout:.0f} s", seconds)
        code = self.proc.returncode
        name = signal.Signals(-code).name if code < 0 else f"exit status {code}"
        return Outcome(case, "crash", f"{name}; {self.tail()}", seconds)

    def tail(self, lines: int = 3) -> str:
        """The last lines the child printed (sd.cpp's own messages, an assertion's text)."""
        self.log.flush()
        self.log.seek(0)
        text = self.log.read().decode(errors="replace").splitlines()
        self.log.seek(0, os.SEEK_END)
        last = [line.strip() for line in text if line.strip() and not line.startswith("== case")]
        return " | ".join(last[-lines:])[-300:]

    def kill(self) -> None:
        """End the child (it is ours) and close its files."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self.selector.close()
        self.log.close()


@dataclasses.dataclass
class Settings:
    """How the search runs."""

    model: Path
    timeout: float = 90.0
    memory_gb: float = 10.0
    fresh: bool = False
    start_timeout: float = 300.0
    #: decode the matrix's images with this TAESD (the samplers are what the matrix is about)
    matrix_taesd: Optional[Path] = None

    def taesd_for(self, case: Case) -> Optional[Path]:
        """The TAESD a child running ``case`` loads, if any."""
        return self.matrix_taesd if case.group == "matrix" else None

    def child_for(self, case: Case) -> "Child":
        """A fresh child set up for ``case``."""
        return Child(self.model, self.memory_gb, self.start_timeout, self.taesd_for(case))


def _run_fresh(case: Case, settings: Settings) -> Outcome:
    child = settings.child_for(case)
    try:
        return child.run(case, settings.timeout)
    finally:
        child.kill()


def _worker_thread(cases: "queue.Queue[Case]", results: list[Outcome], settings: Settings,
                   report: Any) -> None:
    child: Optional[Child] = None
    while True:
        try:
            case = cases.get_nowait()
        except queue.Empty:
            break
        if child is not None and child.taesd != settings.taesd_for(case):
            child.kill()
            child = None
        if child is None:
            child = settings.child_for(case)
        outcome = child.run(case, settings.timeout)
        native_failure = outcome.outcome != "ok" and not (outcome.outcome == "error"
                                                          and "NativeError" not in outcome.detail)
        if settings.fresh or native_failure:
            child.kill()
            child = None
        if outcome.outcome == "crash" and not settings.fresh:
            confirmed = _run_fresh(case, settings)
            if confirmed.outcome != "crash":
                confirmed.detail += f" (crashed after other cases in one child: {outcome.detail})"
            outcome = confirmed
        twin = library_twin(case) if case.group == "matrix" and outcome.outcome != "ok" else None
        if twin is not None:
            outcome.library = _run_fresh(twin, settings)
        results.append(outcome)
        report(outcome)
    if child is not None:
        child.kill()


def search(cases: Sequence[Case], settings: Settings, jobs: int = 2, report: Any = None) -> list[Outcome]:
    """Run ``cases`` on ``jobs`` children at a time; the outcomes in the order of ``cases``."""
    pending: "queue.Queue[Case]" = queue.Queue()
    for case in cases:
        pending.put(case)
    results: list[Outcome] = []
    lock = threading.Lock()

    def locked_report(outcome: Outcome) -> None:
        if report is not None:
            with lock:
                report(outcome)

    threads = [threading.Thread(target=_worker_thread, args=(pending, results, settings, locked_report), daemon=True)
               for _ in range(max(1, jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    order = {id(c): i for i, c in enumerate(cases)}
    return sorted(results, key=lambda o: order[id(o.case)])


def _row(outcome: Outcome) -> str:
    library = ""
    if outcome.library is not None:
        library = f"  [library: {outcome.library.outcome}: {outcome.library.detail}]"
    return (f"{outcome.case.layer:7} {outcome.case.call:7} {outcome.case.name:48} {outcome.outcome:7} "
            f"{outcome.seconds:6.1f}s  {outcome.detail}{library}")


def table(outcomes: Sequence[Outcome]) -> str:
    """The outcomes as a text table, then the counts and the crashes."""
    lines = [f"{'layer':7} {'call':7} {'case':48} {'outcome':7} {'time':>7}  detail"]
    lines += [_row(o) for o in outcomes]
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[f"{o.case.layer} {o.outcome}"] = counts.get(f"{o.case.layer} {o.outcome}", 0) + 1
    lines.append("")
    lines.append("counts: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    crashes = [o for o in outcomes if o.outcome in ("crash", "timeout")]
    if crashes:
        lines.append("crashes and timeouts:")
        lines += ["  " + _row(o) for o in crashes]
    return "\n".join(lines)


def _as_json(outcome: Outcome) -> dict[str, Any]:
    data = {"case": dataclasses.asdict(outcome.case), "outcome": outcome.outcome, "detail": outcome.detail,
            "seconds": round(outcome.seconds, 2)}
    if outcome.library is not None:
        data["library"] = _as_json(outcome.library)
    return data


def main(argv: Optional[list[str]] = None) -> int:
    """Command-line entry (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m sdrest.testing.crash_search",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--group", action="append", choices=("edges", "matrix"),
                        help="case groups to run (repeatable; default: both)")
    parser.add_argument("--layer", choices=("native", "library"), help="only this layer's cases")
    parser.add_argument("--match", action="append", default=[], help="only cases whose name contains this (repeatable: all must match)")
    parser.add_argument("--start", type=int, default=0, help="skip this many cases first (resume a search)")
    parser.add_argument("--limit", type=int, help="run at most this many cases")
    parser.add_argument("--jobs", type=int, default=2, help="children at a time (default 2)")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds a case may take (default 90)")
    parser.add_argument("--memory-gb", type=float, default=10.0, help="address-space limit of a child (0: none)")
    parser.add_argument("--fresh", action="store_true", help="a fresh child for every case")
    parser.add_argument("--json", type=Path, help="also write the outcomes here")
    parser.add_argument("--list", action="store_true", help="print the cases and exit")
    parser.add_argument("--model", type=Path, help="checkpoint (default: the synthetic SD1)")
    parser.add_argument("--full-vae", action="store_true",
                        help="decode the matrix with the full VAE too (default: the synthetic TAESD, faster)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--taesd", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(str(args.model), args.memory_gb, args.taesd)
    cases = all_cases(args.group or ("matrix", "edges"))
    if args.layer:
        cases = [c for c in cases if c.layer == args.layer]
    for pattern in args.match:
        cases = [c for c in cases if pattern in c.name]
    cases = cases[args.start:]
    if args.limit is not None:
        cases = cases[:args.limit]
    if args.list:
        for case in cases:
            print(f"{case.layer:7} {case.call:7} {case.name}")
        print(f"{len(cases)} cases")
        return 0
    if args.model is None:
        from sdrest.testing.synthetic import sd1_checkpoint

        args.model = sd1_checkpoint()
    settings = Settings(args.model, args.timeout, args.memory_gb, args.fresh)
    if not args.full_vae and any(c.group == "matrix" for c in cases):
        from sdrest.testing.synthetic import taesd

        settings.matrix_taesd = taesd()
    started = time.monotonic()
    done = [0]

    def progress(outcome: Outcome) -> None:
        done[0] += 1
        print(f"[{done[0]}/{len(cases)}] {_row(outcome)}", file=sys.stderr, flush=True)

    outcomes = search(cases, settings, args.jobs, progress)
    print(table(outcomes))
    print(f"{len(outcomes)} cases in {time.monotonic() - started:.0f} s with {args.jobs} children")
    if args.json:
        args.json.write_text(json.dumps([_as_json(o) for o in outcomes], indent=1))
    return 1 if any(o.case.layer == "library" and o.outcome == "crash" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
