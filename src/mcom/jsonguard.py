"""JSON that can be stored: the checks every JSON door (inbound endpoint, REST bodies) applies.

:func:`loads` parses UTF-8 JSON text and refuses, with the path of the first offending value,
what no column or later step can hold: ``NaN``/``Infinity`` and numbers that overflow to them
(``1e400``), NUL characters and lone UTF-16 surrogates in any string or key (``\\u0000``,
``\\ud800``), and nesting deeper than :data:`MAX_DEPTH`. The refusal is a :class:`Refused`
(a ``ValueError``) whose ``path`` is a tuple of keys/indexes, e.g. ``("params", "order", "id")``.

NUL and surrogates can only come from ``\\u`` escapes (a raw control character is a JSON
syntax error, UTF-8 text carries no surrogates), and depth can only be exceeded by many
brackets; the walk over the parsed value is skipped when neither is possible.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64

Path = tuple[str | int, ...]

_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")


class Refused(ValueError):
    """The JSON is well-formed but holds something that cannot be stored."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        self.document: Any = None  # the parsed value, when the refusal came after parsing
        where = ".".join(str(p) for p in path) or "(root)"
        super().__init__(f"{where}: {reason}")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise Refused((), f"number {text[:32]} is out of range")
    return value


def _constant(name: str) -> Any:
    raise Refused((), f"{name} is not a JSON number")


def bad_string(value: str) -> str | None:
    """Why ``value`` cannot be stored (NUL / lone surrogate), or None."""
    m = _BAD_CHARS.search(value)
    if m is None:
        return None
    return "contains a NUL character" if m.group() == "\x00" else "contains a lone UTF-16 surrogate"


def check(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`Refused` for the first unstorable string, non-finite float or too deep nesting."""
    stack: list[tuple[Any, Path]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            reason = bad_string(node)
            if reason:
                raise Refused(path, reason)
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise Refused(path, "is not a finite number")
        elif isinstance(node, dict | list):
            if len(path) >= max_depth:
                raise Refused(path, f"nesting deeper than {max_depth} levels")
            if isinstance(node, dict):
                for k, v in node.items():
                    reason = bad_string(k) if isinstance(k, str) else None
                    if reason:
                        raise Refused(path, f"a key {reason}")
                    stack.append((v, (*path, k)))
            else:
                stack.extend((v, (*path, i)) for i, v in enumerate(node))


#: one decoder for every call: ``json.loads(text, parse_float=…)`` builds a new ``JSONDecoder`` (and
#: its scanner) per call, a third of the parse time of a 1.5 KB delivery
_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_constant)


def loads(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``text``; raise ``ValueError`` (malformed) or :class:`Refused` (unstorable)."""
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise Refused((), f"nesting deeper than {max_depth} levels") from None
    if "\\u" in text or text.count("[") + text.count("{") > max_depth:
        try:
            check(value, max_depth=max_depth)
        except Refused as e:
            e.document = value
            raise
    return value
