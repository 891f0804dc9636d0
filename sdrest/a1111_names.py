"""AUTOMATIC1111's names for samplers and noise schedules, and the sd.cpp names they stand for.

A1111 calls a sampler "DPM++ 2M" and its schedule "Karras"; since A1111 1.9 the two are chosen apart, and older
clients still send both in one name ("DPM++ 2M Karras"). This module holds A1111's vocabulary only: each A1111
name, its aliases, and the sd.cpp name it maps onto. Which sd.cpp names exist is never listed here: it comes from
the C library (:mod:`sdrest.names`, or the names a server's workers report), and a sampler or scheduler that
sd.cpp has and A1111 does not name is shown under its sd.cpp name.

Used by the infotext writer (:mod:`sdrest.infotext`: images say "Sampler: Euler a" as A1111's tools expect) and by
the server's ``/sdapi/v1`` routes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "SAMPLERS",
    "SCHEDULERS",
    "A1111Sampler",
    "A1111Scheduler",
    "UnknownName",
    "resolve",
    "sampler_label",
    "samplers",
    "scheduler_label",
    "schedulers",
]


@dataclass(frozen=True)
class A1111Sampler:
    """One A1111 sampler: its display name, the sd.cpp sampler it is, its aliases, and the A1111 scheduler
    (:attr:`A1111Scheduler.name`) A1111 uses for it when the request says "Automatic"."""

    name: str
    sdcpp: str
    aliases: tuple[str, ...] = ()
    scheduler: str | None = None


@dataclass(frozen=True)
class A1111Scheduler:
    """One A1111 noise schedule: its name (``karras``), label (``Karras``), the sd.cpp scheduler it is (None for
    ``automatic``: the sampler's or the model's default), aliases, and A1111's ``default_rho``."""

    name: str
    label: str
    sdcpp: str | None
    aliases: tuple[str, ...] = ()
    default_rho: float = -1.0


#: A1111's samplers (1.9+ names and aliases) that sd.cpp implements, in A1111's order; "Res Multistep" and
#: "Res 2s" are the names upstream sd-server's A1111 routes give sd.cpp's own samplers. The first entry for an
#: sd.cpp name is the one infotexts use.
SAMPLERS: tuple[A1111Sampler, ...] = (
    A1111Sampler("DPM++ 2M", "dpm++2m", ("k_dpmpp_2m",), "karras"),
    A1111Sampler("DPM++ 2S a", "dpm++2s_a", ("k_dpmpp_2s_a",), "karras"),
    A1111Sampler("Euler a", "euler_a", ("k_euler_a", "k_euler_ancestral")),
    A1111Sampler("Euler", "euler", ("k_euler",)),
    A1111Sampler("Heun", "heun", ("k_heun",)),
    A1111Sampler("DPM2", "dpm2", ("k_dpm_2",), "karras"),
    A1111Sampler("DDIM", "ddim_trailing", ("ddim",)),
    A1111Sampler("LCM", "lcm", ("k_lcm",)),
    A1111Sampler("Res Multistep", "res_multistep", ("k_res_multistep",)),
    A1111Sampler("Res 2s", "res_2s", ("k_res_2s",)),
)

#: A1111's schedulers that sd.cpp implements ("Uniform" and "Normal" are both sd.cpp's ``discrete``: evenly
#: spaced timesteps of the model's own schedule). The first entry for an sd.cpp name is the one infotexts use.
SCHEDULERS: tuple[A1111Scheduler, ...] = (
    A1111Scheduler("automatic", "Automatic", None),
    A1111Scheduler("uniform", "Uniform", "discrete"),
    A1111Scheduler("karras", "Karras", "karras", default_rho=7.0),
    A1111Scheduler("exponential", "Exponential", "exponential"),
    A1111Scheduler("sgm_uniform", "SGM Uniform", "sgm_uniform", ("SGMUniform",)),
    A1111Scheduler("kl_optimal", "KL Optimal", "kl_optimal"),
    A1111Scheduler("align_your_steps", "Align Your Steps", "ays"),
    A1111Scheduler("simple", "Simple", "simple"),
    A1111Scheduler("normal", "Normal", "discrete"),
    A1111Scheduler("align_your_steps_GITS", "Align Your Steps GITS", "gits"),
)


class UnknownName(ValueError):
    """A sampler or scheduler name nobody here knows; ``field`` says which (``sampler_name`` or ``scheduler``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def sampler_label(sdcpp: str) -> str:
    """The name A1111 shows for sd.cpp's sampler ``sdcpp`` (``euler_a`` -> ``Euler a``); itself when A1111 has none."""
    return next((s.name for s in SAMPLERS if s.sdcpp == sdcpp), sdcpp)


def scheduler_label(sdcpp: str) -> str:
    """The label A1111 shows for sd.cpp's scheduler ``sdcpp`` (``karras`` -> ``Karras``); itself when A1111 has
    none."""
    return next((s.label for s in SCHEDULERS if s.sdcpp == sdcpp), sdcpp)


def samplers(available: Iterable[str]) -> list[A1111Sampler]:
    """A sampler for each of sd.cpp's ``available`` ones: A1111's entry where it has one (A1111's order), then the
    rest under their sd.cpp names (sd.cpp's order)."""
    names = list(available)
    named = [s for s in SAMPLERS if s.sdcpp in names]
    covered = {s.sdcpp for s in named}
    return named + [A1111Sampler(name, name) for name in names if name not in covered]


def schedulers(available: Iterable[str]) -> list[A1111Scheduler]:
    """``automatic``, A1111's schedulers whose sd.cpp scheduler is in ``available``, then sd.cpp's others under
    their own names."""
    names = list(available)
    named = [s for s in SCHEDULERS if s.sdcpp is None or s.sdcpp in names]
    covered = {s.sdcpp for s in named}
    return named + [A1111Scheduler(name, name, name) for name in names if name not in covered]


def _spellings(*names: str) -> set[str]:
    return {n.strip().lower() for n in names}


def _find_scheduler(name: str, known: Sequence[A1111Scheduler]) -> A1111Scheduler | None:
    wanted = name.strip().lower()
    for scheduler in known:
        if wanted in _spellings(scheduler.name, scheduler.label, *scheduler.aliases, scheduler.sdcpp or ""):
            return scheduler
    return None


def resolve(sampler: str | None, scheduler: str | None, available_samplers: Sequence[str],
            available_schedulers: Sequence[str]) -> tuple[str | None, str | None]:
    """sd.cpp's (sampler, scheduler) for an A1111 request's ``sampler_name`` and ``scheduler``, as A1111 1.9+
    reads them: names, labels, aliases and sd.cpp's own names, in any case; a sampler name ending in a
    scheduler's label ("DPM++ 2M Karras") picks that scheduler; ``automatic`` (or none) is the scheduler A1111
    prefers for the sampler, else sd.cpp's default (None). A missing sampler is sd.cpp's default (None).

    :class:`UnknownName` names the field of a name that is not among the available ones.
    """
    known_schedulers = schedulers(available_schedulers)
    chosen: A1111Scheduler | None = None
    if scheduler is not None and scheduler.strip():
        chosen = _find_scheduler(scheduler, known_schedulers)
        if chosen is None:
            labels = ", ".join(s.label for s in known_schedulers)
            raise UnknownName("scheduler", f"scheduler: unknown scheduler {scheduler!r}; expected one of: {labels}")
    found: A1111Sampler | None = None
    if sampler is not None and sampler.strip():
        name = sampler.strip()
        for candidate in known_schedulers:
            suffix = next((option for option in (candidate.label, *candidate.aliases)
                           if name.lower().endswith(" " + option.lower())), None)
            if suffix is not None:
                chosen, name = candidate, name[:-len(suffix) - 1].strip()
                break
        known = samplers(available_samplers)
        found = next((s for s in known if name.lower() in _spellings(s.name, s.sdcpp, *s.aliases)), None)
        if found is None:
            names = ", ".join(s.name for s in known)
            raise UnknownName("sampler_name", f"sampler_name: unknown sampler {sampler!r}; expected one of: {names}")
    if (chosen is None or chosen.sdcpp is None) and found is not None and found.scheduler is not None:
        preferred = _find_scheduler(found.scheduler, known_schedulers)
        if preferred is not None:
            chosen = preferred
    return (found.sdcpp if found else None), (chosen.sdcpp if chosen else None)
