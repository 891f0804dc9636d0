"""Typed query parameters: one declaration gives both the parser and the OpenAPI schema.

A route declares its parameters once (``LIMIT = Integer("limit", 100, minimum=1, maximum=1000)``), lists their
schemas in its :class:`~sdrest.server.spec.ApiRoute` (``query=schemas(LIMIT)``) and reads them in its handler
(``LIMIT.read(request)``). A malformed or out-of-range value is a 400 naming the parameter. An empty value
(``?limit=``) means the parameter was not given, as an HTML form sends an empty field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from starlette.requests import Request

from sdrest.server.body import text_problem
from sdrest.server.errors import ApiError

T = TypeVar("T")

#: ASCII digits only: ``int()`` would also take "²" (via isdigit callers), "١٢", "1_000" and surrounding spaces
_INTEGER = re.compile(r"[-+]?[0-9]{1,18}")
_NUMBER = re.compile(r"[-+]?(?:[0-9]{1,18}(?:\.[0-9]{0,18})?|\.[0-9]{1,18})(?:[eE][-+]?[0-9]{1,3})?")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
MAX_QUERY_TEXT = 1024


def bad_query(name: str, message: str) -> ApiError:
    """A 400 about one query parameter; the message starts with its name."""
    return ApiError(400, f"{name}: {message}", field=name)


@dataclass(frozen=True)
class QueryParam(Generic[T]):
    """One query parameter: its name, its default (returned when absent or empty) and a description."""

    name: str
    default: T
    description: str = ""

    def read(self, request: Request) -> T:
        """The parameter's value in ``request``; 400 naming it when malformed or out of range."""
        raw = request.query_params.get(self.name)
        if raw is None or raw == "":
            return self.default
        problem = text_problem(raw)
        if problem:
            raise bad_query(self.name, problem)
        return self.parse(raw)

    def parse(self, raw: str) -> T:
        """``raw`` (non-empty) as the parameter's type."""
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        """The JSON schema the OpenAPI document states for the parameter."""
        raise NotImplementedError

    def _described(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self.default is not None:
            schema["default"] = self.default
        if self.description:
            schema["description"] = self.description
        return schema


@dataclass(frozen=True)
class Integer(QueryParam[int]):
    """An integer in ``[minimum, maximum]``."""

    minimum: int = 0
    maximum: int = 2**31 - 1

    def parse(self, raw: str) -> int:
        if not _INTEGER.fullmatch(raw):
            raise bad_query(self.name, f"expected an integer, got {raw[:40]!r}")
        value = int(raw)
        if not self.minimum <= value <= self.maximum:
            raise bad_query(self.name, f"must be between {self.minimum} and {self.maximum}, got {value}")
        return value

    def schema(self) -> dict[str, Any]:
        return self._described({"type": "integer", "minimum": self.minimum, "maximum": self.maximum})


@dataclass(frozen=True)
class Number(QueryParam[float]):
    """A finite decimal number in ``[minimum, maximum]`` (no ``nan``, ``inf`` or hex)."""

    minimum: float = 0.0
    maximum: float = 1e9

    def parse(self, raw: str) -> float:
        value = float(raw) if _NUMBER.fullmatch(raw) else math.nan
        if not math.isfinite(value):
            raise bad_query(self.name, f"expected a number, got {raw[:40]!r}")
        if not self.minimum <= value <= self.maximum:
            raise bad_query(self.name, f"must be between {self.minimum:g} and {self.maximum:g}, got {value:g}")
        return value

    def schema(self) -> dict[str, Any]:
        return self._described({"type": "number", "minimum": self.minimum, "maximum": self.maximum})


@dataclass(frozen=True)
class Boolean(QueryParam[bool]):
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``, any case)."""

    def parse(self, raw: str) -> bool:
        value = raw.lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise bad_query(self.name, f"expected true or false, got {raw[:40]!r}")

    def schema(self) -> dict[str, Any]:
        return self._described({"type": "boolean"})


@dataclass(frozen=True)
class Choice(QueryParam["str | None"]):
    """One of ``choices``."""

    choices: tuple[str, ...] = ()

    def parse(self, raw: str) -> str:
        if raw not in self.choices:
            raise bad_query(self.name, f"unknown value {raw[:40]!r}; expected one of: {', '.join(self.choices)}")
        return raw

    def schema(self) -> dict[str, Any]:
        return self._described({"type": "string", "enum": list(self.choices)})


@dataclass(frozen=True)
class Text(QueryParam["str | None"]):
    """Free text of at most ``max_length`` characters."""

    max_length: int = MAX_QUERY_TEXT

    def parse(self, raw: str) -> str:
        if len(raw) > self.max_length:
            raise bad_query(self.name, f"longer than {self.max_length} characters")
        return raw

    def schema(self) -> dict[str, Any]:
        return self._described({"type": "string", "maxLength": self.max_length})


def schemas(params: Sequence[QueryParam[Any]]) -> dict[str, dict[str, Any]]:
    """``{name: schema}`` of ``params``, as :class:`~sdrest.server.spec.ApiRoute` takes them."""
    return {p.name: p.schema() for p in params}
