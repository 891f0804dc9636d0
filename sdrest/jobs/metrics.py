"""Counters and summaries for ``/metrics``: plain numbers behind a lock, rendered in Prometheus text format."""

from __future__ import annotations

import threading
from collections import defaultdict


def _labels(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


class Metrics:
    """Thread-safe counters (``inc``) and summaries (``observe``: count and sum)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[tuple, float]] = defaultdict(dict)
        self._summaries: dict[str, dict[tuple, list[float]]] = defaultdict(dict)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` to counter ``name{labels}``."""
        key = _labels(labels)
        with self._lock:
            self._counters[name][key] = self._counters[name].get(key, 0.0) + amount

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record one observation of summary ``name{labels}``."""
        key = _labels(labels)
        with self._lock:
            entry = self._summaries[name].setdefault(key, [0.0, 0.0])
            entry[0] += 1
            entry[1] += value

    def counter(self, name: str, **labels: str) -> float:
        """The value of a counter (0 when never incremented)."""
        with self._lock:
            return self._counters.get(name, {}).get(_labels(labels), 0.0)

    def render(self, gauges: dict[str, float], prefix: str = "sdrest_") -> str:
        """Prometheus text exposition of the counters, summaries and the given gauges."""
        lines: list[str] = []

        def fmt(name: str, key: tuple, value: float) -> str:
            label = ",".join(f'{k}="{v}"' for k, v in key)
            return f"{prefix}{name}{{{label}}} {value}" if label else f"{prefix}{name} {value}"

        with self._lock:
            for name, series in sorted(self._counters.items()):
                lines.append(f"# TYPE {prefix}{name} counter")
                lines.extend(fmt(name, k, v) for k, v in sorted(series.items()))
            for name, series in sorted(self._summaries.items()):
                lines.append(f"# TYPE {prefix}{name} summary")
                for k, (count, total) in sorted(series.items()):
                    lines.append(fmt(name + "_count", k, count))
                    lines.append(fmt(name + "_sum", k, total))
        for name, value in sorted(gauges.items()):
            lines.append(f"# TYPE {prefix}{name} gauge")
            lines.append(f"{prefix}{name} {value}")
        return "\n".join(lines) + "\n"
