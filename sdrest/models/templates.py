"""Presets, prompt and negative-prompt templates from a models dir (.json / .yaml / .yml / .txt).

A preset is a mapping of generation parameters; a prompt template is text (a
``.txt`` file, or a JSON/YAML file holding a string or ``{"prompt": ...}``).
Files are parsed with safe loaders only and capped in size. Errors say where a
file fails to parse (line and column), never what it holds: parsers' own messages
quote the text around the problem.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["MAX_TEMPLATE_SIZE", "TEMPLATE_EXTENSIONS", "TEMPLATE_FOLDERS", "Template", "TemplateError", "load_template"]

TEMPLATE_FOLDERS: dict[str, str] = {"presets": "preset", "prompts": "prompt", "neg_prompts": "neg_prompt"}
"""models-dir folder -> template kind."""

TEMPLATE_EXTENSIONS = (".json", ".yaml", ".yml", ".txt")
MAX_TEMPLATE_SIZE = 1 << 20


class TemplateError(ValueError):
    """A template file could not be read or parsed."""


@dataclass(frozen=True, slots=True)
class Template:
    """One template file: id (relative path without extension), kind, path and size."""

    id: str
    kind: str
    path: str
    format: str
    size: int

    def load(self) -> Any:
        """The parsed content: a dict for presets, text (or a dict) for prompts."""
        return load_template(self.path)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {"id": self.id, "kind": self.kind, "path": self.path, "format": self.format, "size": self.size}


def load_template(path: str | os.PathLike[str]) -> Any:
    """Parse a template file by its extension; :class:`TemplateError` if it cannot be."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_TEMPLATE_SIZE:
            raise TemplateError(f"{p.name}: larger than {MAX_TEMPLATE_SIZE} bytes")
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"{p.name}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError as exc:
        raise TemplateError(f"{p.name}: not UTF-8 text (at byte {exc.start})") from None
    ext = p.suffix.lower()
    try:
        if ext == ".json":
            return json.loads(text)
        if ext in (".yaml", ".yml"):
            return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{p.name}: not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise TemplateError(f"{p.name}: not valid YAML{where}") from None
    except (ValueError, RecursionError, yaml.YAMLError):
        raise TemplateError(f"{p.name}: not valid {ext[1:].upper()}") from None
    return text
