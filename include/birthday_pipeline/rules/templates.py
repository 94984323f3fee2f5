"""Safe text templates: named placeholders filled from a fixed set of values, nothing else.

A template is text with ``{placeholder}`` fields (``{{`` and ``}}`` are literal braces), read with
``string.Formatter().parse`` once, when the settings are read. A field is only a bare name from the allowed
set: attribute access (``{name.__class__}``), indexing (``{name[0]}``), conversions (``{name!r}``) and format
specs (``{name:>10}``) are rejected, so a template can reach no object, call nothing and read no other field.
Rendering joins the pre-parsed pieces with the values' text: no parsing, no ``str.format`` at send time.

The same rule fills the string values of a custom JSON payload (``JsonTemplate``): placeholders live only
inside JSON strings, so whatever a value holds it is JSON-escaped by the encoder, never spliced into JSON text.
"""

from __future__ import annotations

import dataclasses
import json
import string
from collections.abc import Mapping, Set
from typing import Any


class TemplateError(ValueError):
    """A template uses a placeholder or a field syntax it may not."""


@dataclasses.dataclass(frozen=True)
class Template:
    """Pre-parsed text: literal pieces and, between them, the names of the values to insert."""

    text: str
    literals: tuple[str, ...]  # one more than ``fields``
    fields: tuple[str, ...]

    @classmethod
    def parse(cls, text: str, allowed: Set[str]) -> Template:
        """``text`` as a template whose fields are names from ``allowed``; TemplateError says what is wrong."""
        literals, fields, pending = [], [], []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as error:  # an unmatched brace
            raise TemplateError(f"{error}; write {{{{ and }}}} for a literal brace") from None
        for literal, field, format_spec, conversion in parsed:
            pending.append(literal)
            if field is None:
                continue
            if conversion is not None or format_spec:
                raise TemplateError(f"placeholder {{{field}}} has a conversion or format; write only {{name}}")
            if field not in allowed:
                raise TemplateError(f"unknown placeholder {{{field}}}; known: {', '.join(sorted(allowed))}")
            literals.append("".join(pending))
            pending = []
            fields.append(field)
        literals.append("".join(pending))
        return cls(text, tuple(literals), tuple(fields))

    def render(self, values: Mapping[str, str]) -> str:
        """The text with each placeholder replaced by its value, as given (already text)."""
        if not self.fields:
            return self.literals[0]
        parts = [self.literals[0]]
        for field, literal in zip(self.fields, self.literals[1:], strict=True):
            parts.append(values[field])
            parts.append(literal)
        return "".join(parts)


@dataclasses.dataclass(frozen=True)
class JsonTemplate:
    """A JSON value whose strings are templates; keys, numbers, booleans and null are taken as written."""

    value: Any

    @classmethod
    def parse(cls, value: Any, allowed: Set[str]) -> JsonTemplate:
        return cls(_parse_json(value, allowed, "$"))

    def render(self, values: Mapping[str, str]) -> Any:
        """The JSON value with every string template rendered (encode it with ``json.dumps``)."""
        return _render_json(self.value, values)

    def as_json(self) -> Any:
        return _unparsed(self.value)


def _parse_json(value: Any, allowed: Set[str], where: str) -> Any:
    if isinstance(value, str):
        try:
            return Template.parse(value, allowed)
        except TemplateError as error:
            raise TemplateError(f"at {where}: {error}") from None
    if isinstance(value, dict):
        return {key: _parse_json(item, allowed, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [_parse_json(item, allowed, f"{where}[{index}]") for index, item in enumerate(value)]
    if value is None or isinstance(value, bool | int | float):
        return value
    raise TemplateError(f"at {where}: {type(value).__name__} is not a JSON value")


def _render_json(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, Template):
        return value.render(values)
    if isinstance(value, dict):
        return {key: _render_json(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_json(item, values) for item in value]
    return value


def _unparsed(value: Any) -> Any:
    if isinstance(value, Template):
        return value.text
    if isinstance(value, dict):
        return {key: _unparsed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unparsed(item) for item in value]
    return value


def compact_json(value: Any) -> bytes:
    """``value`` as the UTF-8 JSON bytes a request carries: no spaces, non-ASCII text as itself."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
