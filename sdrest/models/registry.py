"""The registry of a models dir: scan, classify, cache, search, hash, resolve companions.

Layout (the seed's): ``checkpoints/``, ``diffusion_models/``, ``vae/``, ``lora/``,
``taesd/``, ``esrgan/``, ``upscaler/``, ``controlnet/``, ``embeddings/``,
``text_encoders/`` (``clip``, ``t5xxl``, ``llm``...), ``photomaker/``, plus
``presets/``, ``prompts/``, ``neg_prompts/`` for templates; files may also sit
flat in the root. The folder is a hint, the header decides: an entry whose
header disagrees with its folder carries a ``mismatch`` note.

Ids are stable: the path relative to the root without its extension, with ``/``
(``checkpoints/v1-5``). Where two files differ only by extension, both keep
their extension in the id. Results are cached by (path, size, mtime), in memory
and, with ``cache_path``, on disk, so a rescan of an unchanged folder only stats
files.

Only model files are entries: a file whose header does not read as a model
(GGUF, safetensors, a torch state dict, a diffusers folder, holding tensors) is
not listed, hashed or served, whatever its name; the scan report names it under
``skipped`` with a reason that never quotes its bytes. Links are followed
(people link models in from other tools' folders); ``links="inside"`` refuses
those that lead out of the models dir. Folder links that loop, or lead to a
folder already scanned, are scanned once, real folders first, so ids do not
depend on the order the file system lists names in.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sdrest.models.detect import ModelInfo, detect, read_error
from sdrest.models.hashing import FileChanged, Hashes, _Event, file_hashes
from sdrest.models.reader import DIFFUSERS_PARTS, is_diffusers_folder
from sdrest.models.templates import TEMPLATE_EXTENSIONS, TEMPLATE_FOLDERS, Template

__all__ = [
    "FOLDER_KINDS",
    "LINK_POLICIES",
    "MODEL_EXTENSIONS",
    "ModelEntry",
    "Page",
    "Registry",
    "ScanReport",
    "Skipped",
    "entries_dicts",
    "is_model_file",
]

MODEL_EXTENSIONS = (".safetensors", ".sft", ".gguf", ".ckpt", ".pt", ".pth", ".bin")
"""File extensions the registry treats as models."""

FOLDER_KINDS: dict[str, tuple[str, ...]] = {
    "checkpoints": ("checkpoint", "diffusion_model"),
    "diffusion_models": ("diffusion_model", "checkpoint"),
    "unet": ("diffusion_model", "checkpoint"),
    "vae": ("vae",),
    "lora": ("lora",),
    "loras": ("lora",),
    "taesd": ("taesd",),
    "vae_approx": ("taesd",),
    "esrgan": ("esrgan",),
    "upscaler": ("esrgan",),
    "upscale_models": ("esrgan",),
    "controlnet": ("controlnet",),
    "embeddings": ("embedding",),
    "text_encoders": ("text_encoder",),
    "clip": ("text_encoder",),
    "clip_vision": ("text_encoder",),
    "t5xxl": ("text_encoder",),
    "llm": ("text_encoder",),
    "photomaker": ("photomaker",),
}
"""Seed folder -> the kinds a file there is expected to be (the first is the usual one)."""

LINK_POLICIES = ("follow", "inside")
"""``Registry(links=...)``: follow every link, or only those whose target is inside the models dir."""

_CACHE_VERSION = 2  # 2: non-model files cached apart, file identities, the link policy
_OUTSIDE = "a link leading out of the models dir (refused: links=inside)"
_BROKEN = "a link that cannot be followed (a loop, or its target is missing)"
_SEEN_FOLDER = "a link to a folder already scanned"
_ANCESTOR = "a link to a folder that holds the models dir (a loop)"
_SORT_KEYS: dict[str, Callable[[ModelEntry], Any]] = {
    "id": lambda e: e.id.lower(),
    "name": lambda e: e.name.lower(),
    "kind": lambda e: (e.kind, e.id.lower()),
    "architecture": lambda e: (e.architecture or "~", e.id.lower()),
    "size": lambda e: e.size,
    "mtime": lambda e: e.mtime_ns,
    "parameters": lambda e: e.info.parameters,
    "quantization": lambda e: (e.info.quantization or "~", e.id.lower()),
}


@dataclass(slots=True)
class ModelEntry:
    """One model in the registry: its id, where it is, what its header says, and notes."""

    id: str
    path: str
    rel_path: str
    folder: str | None
    size: int
    mtime_ns: int
    info: ModelInfo
    mismatch: str | None = None
    hashes: Hashes | None = None
    file_id: tuple[int, int] | None = None
    """(device, inode) of the file (a link's target) when scanned; None for diffusers folders."""

    @property
    def name(self) -> str:
        """The file (or folder) name."""
        return PurePosixPath(self.rel_path).name

    @property
    def kind(self) -> str:
        """The kind the header says (see :data:`sdrest.models.KINDS`)."""
        return self.info.kind

    @property
    def architecture(self) -> str | None:
        """The architecture the header says."""
        return self.info.architecture

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (the full :class:`ModelInfo` under ``info``)."""
        return {
            "id": self.id,
            "name": self.name,
            "path": self.path,
            "rel_path": self.rel_path,
            "folder": self.folder,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "kind": self.kind,
            "architecture": self.architecture,
            "mismatch": self.mismatch,
            "hashes": self.hashes.to_dict() if self.hashes else None,
            "info": self.info.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Page:
    """One page of search results and the total count before paging."""

    items: list[ModelEntry]
    total: int
    offset: int
    limit: int | None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file the scan did not list: its path relative to the models dir and why (never its bytes)."""

    rel_path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """A JSON-friendly form."""
        return {"rel_path": self.rel_path, "reason": self.reason}


@dataclass(slots=True)
class ScanReport:
    """What a scan found: ids added, changed, removed, how many were unchanged, the files with a
    model's extension it did not list (``skipped``), and the time."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    seconds: float = 0.0
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(slots=True)
class _Found:
    rel: str
    path: str
    size: int
    mtime_ns: int
    file_id: tuple[int, int] | None = None


def is_model_file(info: ModelInfo) -> bool:
    """True when the header read as a model format and lists tensors: what the registry lists.

    A file of a kind sdrest does not know (``kind="unknown"`` without ``error``) is still a model
    file; one whose header could not be read (``error`` set) is not.
    """
    return info.format is not None and info.error is None


class Registry:
    """The models (and templates) of one models dir.

    ``scan()`` reads what is new or changed and forgets what is gone; the other methods
    read the last scan's state. Safe to use from several threads.

    ``links``: ``"follow"`` (the default) follows every link, file or folder; ``"inside"``
    refuses links whose target is outside the models dir (for hardened installs). Either way
    only files whose header reads as a model are listed, hashed and served.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        cache_path: str | os.PathLike[str] | None = None,
        detector: Callable[[str], ModelInfo] = detect,
        links: str = "follow",
    ) -> None:
        if links not in LINK_POLICIES:
            raise ValueError(f"links: expected one of {', '.join(LINK_POLICIES)}, got {links!r}")
        self.root = Path(root).resolve()
        self.links = links
        self.cache_path = Path(cache_path) if cache_path is not None else None
        self._detect = detector
        self._lock = threading.RLock()
        self._entries: dict[str, ModelEntry] = {}  # rel_path -> entry (model files only)
        self._rejected: dict[str, ModelEntry] = {}  # rel_path -> what detect said of a file that is no model
        self._by_id: dict[str, ModelEntry] = {}
        self._skipped: dict[str, Skipped] = {}  # rel_path -> why the last scan left it out
        self._templates: dict[str, Template] = {}
        self._root_prefix = os.path.join(str(self.root), "")
        self._load_cache()

    # -- scanning ---------------------------------------------------------------------------

    def scan(self) -> ScanReport:
        """Walk the root; detect new and changed files, drop removed ones. Returns what changed.

        Files whose header is not a model's are left out and named in the report's ``skipped``
        (their verdict is cached like any other, so a rescan does not read them again).
        """
        t0 = time.perf_counter()
        if not self.root.is_dir():
            raise FileNotFoundError(f"models dir not found: {self.root}")
        models, templates, skipped = self._walk()
        report = ScanReport()
        with self._lock:
            old, old_rejected = self._entries, self._rejected
            new: dict[str, ModelEntry] = {}
            rejected: dict[str, ModelEntry] = {}
            dirty = False
            for f in models:
                prev = old.get(f.rel) or old_rejected.get(f.rel)
                if prev is not None and _same_file(prev, f):
                    prev.path = f.path
                    dirty = dirty or prev.file_id != f.file_id  # known now (a cache written before had none)
                    prev.file_id = f.file_id
                    entry = prev
                else:
                    try:
                        info = self._detect(f.path)
                    except OSError as exc:  # gone, or a link retargeted, since the walk
                        info = ModelInfo(path=f.path, format=None, size=f.size, error=read_error(exc))
                    entry = ModelEntry("", f.path, f.rel, _folder_of(f.rel), f.size, f.mtime_ns, info, file_id=f.file_id)
                    dirty = True
                if not is_model_file(entry.info):
                    rejected[f.rel] = entry
                    skipped.append(Skipped(f.rel, f"not a model file: {entry.info.error or 'unreadable header'}"))
                    continue
                new[f.rel] = entry
                if entry is prev and f.rel in old:
                    report.unchanged += 1
                else:
                    (report.changed if f.rel in old else report.added).append(f.rel)
            removed = [rel for rel in old if rel not in new]
            dirty = dirty or bool(removed) or rejected.keys() != old_rejected.keys()
            self._assign_ids(new)
            report.added = [new[r].id for r in report.added]
            report.changed = [new[r].id for r in report.changed]
            report.removed = [old[r].id for r in removed]
            report.skipped = sorted(skipped, key=lambda k: k.rel_path)
            self._skipped = {k.rel_path: k for k in report.skipped}
            self._entries = new
            self._rejected = rejected
            self._by_id = {e.id: e for e in new.values()}
            self._templates = {t.id: t for t in templates}
            if dirty or (self.cache_path is not None and not self.cache_path.exists()):
                self._save_cache()
        report.seconds = time.perf_counter() - t0
        return report

    def _inside(self, path: str) -> bool | None:
        """True when ``path``, links resolved, is the models dir or below it; None when the links
        cannot be resolved (a loop, a missing target)."""
        try:
            real = os.path.realpath(path, strict=True)
        except OSError:
            return None
        return real == str(self.root) or real.startswith(self._root_prefix)

    def _walk(self) -> tuple[list[_Found], list[Template], list[Skipped]]:
        """Every model file, diffusers folder and template under the root, and what was refused.

        Breadth first, names sorted, real folders before folders reached through a link: a folder
        is scanned once (by device and inode), under the first path found in that order, so links
        that loop or duplicate a folder add nothing and the ids stay stable. A folder link to the
        models dir or above it is not followed (it would scan the models dir's surroundings).
        """
        models: list[_Found] = []
        templates: list[Template] = []
        skipped: list[Skipped] = []
        seen_dirs: set[tuple[int, int]] = set()
        inside_only = self.links == "inside"
        real_dirs: deque[tuple[str, str]] = deque([(str(self.root), "")])  # (path, rel)
        linked_dirs: deque[tuple[str, str]] = deque()
        while real_dirs or linked_dirs:
            folder, folder_rel = real_dirs.popleft() if real_dirs else linked_dirs.popleft()
            try:
                st = os.stat(folder)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen_dirs:
                skipped.append(Skipped(folder_rel, _SEEN_FOLDER))
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            try:
                with os.scandir(folder) as it:
                    listing = sorted(it, key=lambda d: d.name)
            except OSError:
                continue
            for de in listing:
                if de.name.startswith("."):
                    continue
                rel = f"{folder_rel}/{de.name}" if folder_rel else de.name
                ext = os.path.splitext(de.name)[1].lower()
                is_link = de.is_symlink()
                if is_link and inside_only and self._inside(de.path) is False:  # None: broken, said below
                    if ext in MODEL_EXTENSIONS or _may_be_folder(de):
                        skipped.append(Skipped(rel, _OUTSIDE))
                    continue
                try:
                    is_dir = de.is_dir()
                    is_file = not is_dir and de.is_file()
                except OSError:
                    is_dir = is_file = False
                top = rel.split("/", 1)[0]
                if is_dir:
                    if is_diffusers_folder(de.path):
                        if inside_only and not self._parts_inside(de.path):
                            skipped.append(Skipped(rel, _OUTSIDE))
                            continue
                        found = _diffusers_found(rel, de.path)
                        if found is not None:
                            models.append(found)
                        continue
                    if is_link and self._holds_root(de.path):
                        # `up -> ..`, `all -> /`: the models dir again, and everything around it
                        skipped.append(Skipped(rel, _ANCESTOR))
                        continue
                    (linked_dirs if is_link else real_dirs).append((de.path, rel))
                    continue
                if not is_file:
                    if is_link and ext in MODEL_EXTENSIONS:
                        skipped.append(Skipped(rel, _BROKEN))
                    continue
                if top in TEMPLATE_FOLDERS and rel != top:
                    if ext in TEMPLATE_EXTENSIONS:
                        try:
                            size = de.stat().st_size
                        except OSError:
                            continue
                        tid = rel[: -len(ext)]
                        templates.append(Template(tid, TEMPLATE_FOLDERS[top], de.path, ext[1:], size))
                    continue
                if ext not in MODEL_EXTENSIONS:
                    continue
                try:
                    fst = de.stat()
                except OSError:
                    continue
                models.append(_Found(rel, de.path, fst.st_size, fst.st_mtime_ns, (fst.st_dev, fst.st_ino)))
        models.sort(key=lambda f: f.rel)
        templates.sort(key=lambda t: t.id)
        return models, templates, skipped

    def _holds_root(self, path: str) -> bool:
        """True when the folder ``path`` leads to (links resolved) is the models dir or one above it."""
        try:
            real = os.path.realpath(path, strict=True)
        except OSError:
            return False
        return self._root_prefix.startswith(os.path.join(real, ""))

    def _parts_inside(self, folder: str) -> bool:
        """A diffusers folder's parts (often links into a download cache) all resolve inside the root."""
        for part, _prefix, _required in DIFFUSERS_PARTS:
            path = os.path.join(folder, part)
            if os.path.lexists(path) and self._inside(path) is False:
                return False
        return True

    @staticmethod
    def _assign_ids(entries: dict[str, ModelEntry]) -> None:
        stems: dict[str, list[ModelEntry]] = {}
        for e in entries.values():
            p = PurePosixPath(e.rel_path)
            stem = e.rel_path if p.suffix.lower() not in MODEL_EXTENSIONS else str(p.with_suffix(""))
            stems.setdefault(stem, []).append(e)
        for stem, group in stems.items():
            for e in group:
                e.id = stem if len(group) == 1 else e.rel_path
                e.mismatch = _mismatch(e)

    # -- reading ----------------------------------------------------------------------------

    def entries(self) -> list[ModelEntry]:
        """Every model of the last scan, sorted by id."""
        with self._lock:
            return sorted(self._by_id.values(), key=lambda e: e.id)

    def get(self, model_id: str) -> ModelEntry:
        """The entry with this id; :class:`KeyError` if there is none."""
        with self._lock:
            try:
                return self._by_id[model_id]
            except KeyError:
                raise KeyError(f"no model with id {model_id!r}") from None

    def find(self, name: str) -> ModelEntry:
        """An entry by id, relative path, or file name with or without extension, when unique."""
        with self._lock:
            if name in self._by_id:
                return self._by_id[name]
            if name in self._entries:
                return self._entries[name]
            low = name.lower()
            hits = [e for e in self._by_id.values() if e.name.lower() == low or PurePosixPath(e.id).name.lower() == low]
            if len(hits) == 1:
                return hits[0]
            if hits:
                ids = ", ".join(sorted(e.id for e in hits))
                raise KeyError(f"{name!r} is ambiguous: {ids}")
            raise KeyError(f"no model named {name!r}")

    def skipped(self) -> list[Skipped]:
        """What the last scan left out (files that are not models, refused or broken links), by path."""
        with self._lock:
            return list(self._skipped.values())

    def find_skipped(self, name: str) -> Skipped:
        """A file the last scan left out, named as :meth:`find` names entries (relative path with or
        without extension, or a unique file name with or without it); :class:`KeyError` otherwise."""
        with self._lock:
            if name in self._skipped:
                return self._skipped[name]
            low = name.lower()
            exact, named = [], []
            for s in self._skipped.values():
                path = PurePosixPath(s.rel_path)
                stem = str(path.with_suffix("")) if path.suffix.lower() in MODEL_EXTENSIONS else s.rel_path
                if name == stem:
                    exact.append(s)
                elif low in (path.name.lower(), PurePosixPath(stem).name.lower()):
                    named.append(s)
            hits = exact or named
            if len(hits) == 1:
                return hits[0]
            raise KeyError(f"{name!r} is ambiguous" if hits else f"nothing skipped is named {name!r}")

    def search(
        self,
        query: str | None = None,
        *,
        kind: str | Iterable[str] | None = None,
        architecture: str | None = None,
        sort: str = "id",
        descending: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> Page:
        """Entries matching every word of ``query`` (in id, name, kind, architecture), filtered by
        ``kind`` and ``architecture`` (exact, or a version the file fits), sorted and paged."""
        if sort not in _SORT_KEYS:
            raise ValueError(f"sort: unknown key {sort!r}; one of {', '.join(_SORT_KEYS)}")
        if offset < 0 or (limit is not None and limit < 0):
            raise ValueError("offset and limit must not be negative")
        kinds = {kind} if isinstance(kind, str) else set(kind) if kind is not None else None
        words = query.lower().split() if query else []
        arch = architecture.lower() if architecture else None
        hits = []
        for e in self.entries():
            if kinds is not None and e.kind not in kinds:
                continue
            if (
                arch is not None
                and (e.architecture or "").lower() != arch
                and arch not in (f.lower() for f in e.info.fits)
            ):
                continue
            if words:
                hay = " ".join((e.id, e.name, e.kind, e.architecture or "", e.info.quantization or "")).lower()
                if not all(w in hay for w in words):
                    continue
            hits.append(e)
        hits.sort(key=_SORT_KEYS[sort], reverse=descending)
        end = None if limit is None else offset + limit
        return Page(hits[offset:end], len(hits), offset, limit)

    def templates(self, kind: str | None = None) -> list[Template]:
        """Presets, prompts and negative prompts (``kind``: ``preset``, ``prompt``, ``neg_prompt``)."""
        with self._lock:
            return [t for t in self._templates.values() if kind is None or t.kind == kind]

    def template(self, template_id: str) -> Template:
        """The template with this id; :class:`KeyError` if there is none."""
        with self._lock:
            try:
                return self._templates[template_id]
            except KeyError:
                raise KeyError(f"no template with id {template_id!r}") from None

    def read_template(self, template_id: str) -> Any:
        """A template's parsed content; :class:`KeyError` or :class:`TemplateError`."""
        return self.template(template_id).load()

    # -- hashes -----------------------------------------------------------------------------

    def hashes(
        self,
        model_id: str,
        *,
        progress: Callable[[int, int], None] | None = None,
        cancel: _Event | None = None,
    ) -> Hashes:
        """sha256 / A1111 hashes of a model file, computed once and cached with its (size, mtime).

        ``cancel`` (anything with ``is_set()``) stops the streaming with :class:`HashCancelled`.
        """
        entry = self.find(model_id)
        if entry.hashes is not None:
            return entry.hashes
        if os.path.isdir(entry.path):
            raise IsADirectoryError(f"{entry.id} is a folder; hash its files")
        changed = FileChanged(f"{entry.id} changed since the last scan; rescan the models dir")
        if self.links == "inside" and self._inside(entry.path) is not True:
            raise changed  # a link retargeted out of the models dir after the scan
        try:
            # the file hashed is the one scanned: same size, mtime and (device, inode), checked on the open file
            hashes = file_hashes(entry.path, progress=progress, cancel=cancel,
                                 expect=(entry.size, entry.mtime_ns, entry.file_id))
        except FileChanged:
            raise changed from None
        with self._lock:
            st = os.stat(entry.path)
            if st.st_size == entry.size and st.st_mtime_ns == entry.mtime_ns:
                entry.hashes = hashes
                self._save_cache()
        return hashes

    def remember_hashes(self, model_id: str, hashes: Hashes) -> bool:
        """Cache hashes computed elsewhere (by a worker process) when the file is unchanged since the scan."""
        try:
            entry = self.find(model_id)
            st = os.stat(entry.path)
        except (KeyError, OSError):
            return False
        with self._lock:
            if st.st_size != entry.size or st.st_mtime_ns != entry.mtime_ns:
                return False
            entry.hashes = hashes
            self._save_cache()
        return True

    # -- cache ------------------------------------------------------------------------------

    def _load_cache(self) -> None:
        if self.cache_path is None:
            return
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
            if (
                data.get("version") != _CACHE_VERSION
                or data.get("root") != str(self.root)
                or data.get("links") != self.links
            ):
                return
            for rel, rec in data["entries"].items():
                info = ModelInfo.from_dict(rec["info"])
                h = rec.get("hashes")
                fid = rec.get("file_id")
                path = str(self.root / rel)
                entry = ModelEntry(
                    "",
                    path,
                    rel,
                    _folder_of(rel),
                    rec["size"],
                    rec["mtime_ns"],
                    info,
                    hashes=Hashes(**h) if h else None,
                    file_id=(int(fid[0]), int(fid[1])) if fid else None,
                )
                (self._entries if is_model_file(info) else self._rejected)[rel] = entry
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            self._entries = {}
            self._rejected = {}
            return
        self._assign_ids(self._entries)
        self._by_id = {e.id: e for e in self._entries.values()}

    def _save_cache(self) -> None:
        if self.cache_path is None:
            return
        data = {
            "version": _CACHE_VERSION,
            "root": str(self.root),
            "links": self.links,
            "entries": {
                rel: {
                    "size": e.size,
                    "mtime_ns": e.mtime_ns,
                    "file_id": list(e.file_id) if e.file_id else None,
                    "info": e.info.to_dict(),
                    "hashes": e.hashes.to_dict() if e.hashes else None,
                }
                for rel, e in (*self._entries.items(), *self._rejected.items())
            },
        }
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".sdrest-models-", dir=self.cache_path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, separators=(",", ":"))
            os.replace(tmp, self.cache_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _folder_of(rel: str) -> str | None:
    parts = rel.split("/")
    return parts[0] if len(parts) > 1 and parts[0] in FOLDER_KINDS else None


def _same_file(prev: ModelEntry, f: _Found) -> bool:
    """The cache key: size and mtime, and (device, inode) where both sides know it."""
    if prev.size != f.size or prev.mtime_ns != f.mtime_ns:
        return False
    return prev.file_id is None or f.file_id is None or prev.file_id == f.file_id


def _may_be_folder(de: os.DirEntry[str]) -> bool:
    try:
        return de.is_dir()
    except OSError:
        return False


def _mismatch(e: ModelEntry) -> str | None:
    if e.folder is None:
        return None
    expected = FOLDER_KINDS[e.folder]
    if e.info.kind == "unknown":
        return f"in {e.folder}/ but sdrest does not know this kind of model"
    if e.info.kind not in expected:
        return f"in {e.folder}/ but the header says {e.info.kind}"
    return None


def _diffusers_found(rel: str, path: str) -> _Found | None:
    size = 0
    mtime = 0
    for part, _prefix, required in DIFFUSERS_PARTS:
        try:
            st = os.stat(os.path.join(path, part))
        except OSError:
            if required:
                mtime = max(mtime, 1)
            continue
        size += st.st_size
        mtime = max(mtime, st.st_mtime_ns)
    try:
        mtime = max(mtime, os.stat(path).st_mtime_ns)
    except OSError:
        return None
    return _Found(rel, path, size, mtime)


def entries_dicts(entries: Iterable[ModelEntry]) -> list[dict[str, Any]]:
    """``to_dict()`` of each entry (for JSON output)."""
    return [e.to_dict() for e in entries]
