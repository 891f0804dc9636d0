"""What the ``/sdapi/v1`` routes keep per caller: their options, and A1111's ``interrupted``/``skipped`` flags.

A1111 is one user's server: ``progress``, ``interrupt``, ``skip`` and ``options`` speak of "the" generation. Here
each caller has their own, keyed by the principal's owner (with ``auth none`` everyone is one caller, as in
A1111), and "their generation" is their running job.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sdrest.auth.service import Principal
from sdrest.jobs.store import Job
from sdrest.server.a1111.options import OptionsStore
from sdrest.server.state import ServerState

__all__ = ["A1111_KINDS", "Dialect", "Flags", "callers_jobs", "dialect_of", "owner_key"]

#: the job kinds A1111's progress, interrupt and skip are about: what its routes make (and the same work queued
#: by the caller through the other APIs)
A1111_KINDS = ("txt2img", "img2img", "inpainting", "controlnet", "video", "upscale")
_KEY = "a1111"


@dataclass
class Flags:
    """A1111's ``interrupted`` and ``skipped`` for one caller: set by ``interrupt``/``skip``, cleared when the
    caller starts a new generation."""

    interrupted: bool = False
    skipped: bool = False


@dataclass
class Dialect:
    """The A1111 dialect's state in one server."""

    options: OptionsStore
    flags: dict[str, Flags] = field(default_factory=dict)

    def flags_of(self, owner: str) -> Flags:
        """The caller's flags, to change (kept from now on)."""
        return self.flags.setdefault(owner, Flags())

    def read_flags(self, owner: str) -> Flags:
        """The caller's flags, to read (a caller never interrupted keeps nothing here)."""
        return self.flags.get(owner) or Flags()

    def started(self, owner: str) -> None:
        """The caller starts a generation: A1111 clears both flags."""
        self.flags.pop(owner, None)


def owner_key(principal: Principal) -> str:
    """Whose options and flags a request uses: the principal's owner (``""`` for everyone with ``auth none``)."""
    return principal.owner or ""


def dialect_of(state: ServerState) -> Dialect:
    """The server's A1111 state, made on first use (the options file lives in the data dir)."""
    dialect = state.extra.get(_KEY)
    if dialect is None:
        dialect = state.extra[_KEY] = Dialect(OptionsStore(state.config.data_dir / "a1111-options.json"))
    return dialect


def callers_jobs(state: ServerState, principal: Principal, statuses: list[str], limit: int = 1000) -> list[Job]:
    """The caller's jobs of :data:`A1111_KINDS` in ``statuses`` (everyone's with ``auth none``), in queue order."""
    jobs = state.queue.list_jobs(statuses=statuses, owner=principal.owner, limit=limit)
    return [job for job in jobs if job.kind in A1111_KINDS]
