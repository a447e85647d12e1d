"""Small lenient readers for payload values (numbers may arrive as numeric strings, §8)."""

from __future__ import annotations

import math
from typing import Any

from mcom.sandbox.protocol import invalid_params


def num(value: Any, default: float = 0.0) -> float:
    if isinstance(value, bool):
        return default
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return default
    return default


def quantity(value: Any, where: str) -> float:
    """A stock quantity: a finite number ≥ 0 (or a numeric string); raises ``ValueError`` naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{where}: {value!r} is not a number")
    try:
        parsed = float(value)
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(parsed) or parsed < 0:
        raise ValueError(f"{where}: {value!r} must be a finite number of 0 or more")
    return parsed


def number(value: float) -> float | int:
    """Render a quantity as an int when it is whole (``2`` rather than ``2.0``)."""
    return int(value) if float(value).is_integer() else round(value, 4)


def money(value: float) -> float:
    return round(value + 0.0, 2)


def require_obj(container: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
    value = container.get(key)
    if not isinstance(value, dict):
        raise invalid_params(f"{where or key} must be an object")
    return value


def require_id(container: dict[str, Any], key: str, where: str) -> str:
    value = container.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        raise invalid_params(f"{where} is required (non-empty string)")
    return str(value)


def text(value: Any, default: str = "") -> str:
    return default if value is None else str(value)


def attributes(value: Any) -> list[dict[str, Any]]:
    """Custom attributes carrying both ``attribute_code`` and ``name`` (§12 #20)."""
    out = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict):
            code = item.get("attribute_code", item.get("name"))
            out.append({**item, "attribute_code": code, "name": code, "value": item.get("value")})
    return out
