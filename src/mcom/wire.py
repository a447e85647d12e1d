"""Types shared by the OMS messages of every module: custom attributes, ids, money, quantities.

Outbound params are frozen dataclasses rendered with ``to_params()``; their custom attributes are
:class:`CustomAttribute`. Inbound params are parsed at the edge with pydantic models built from the
annotated types below, through :func:`parse` (one ``InvalidPayload`` line naming the fields):

- :data:`Text` — ids and codes; numbers become their text, ``null`` ``""``; objects, arrays and
  booleans are rejected. :data:`LooseText` — fields read for display only: anything that is not
  text-like becomes ``""`` (a stray object never parks a message).
- :data:`RequiredText` — a required id (text, stripped, not empty); :data:`RequiredId` — the same
  from a JSON string or integer only.
- :data:`Amount` — money or a quantity from a JSON number or a numeric string (peers send both),
  ``null``/``""`` → ``None``, anything else rejected; :data:`LooseDecimal` — the same, but what is
  not a finite number becomes ``None``; :data:`LineNumber` — an integer the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError

from mcom.service_bus.errors import InvalidPayload

#: money travels with two decimals
CENT = Decimal("0.01")
#: the id of an order's shipping line (the last line of an exported order)
SHIPPING_LINE_ID = "SHIPPING"

# --------------------------------------------------------------------------------- outbound


@dataclass(frozen=True)
class CustomAttribute:
    """One ``custom_attributes[]`` entry ``{attribute_code, value}``.

    Some OMS answers echo the code as ``name``; messages whose answer is matched by an attribute
    send both spellings (``to_params(both_spellings=True)``).
    """

    attribute_code: str
    value: Any

    @property
    def code(self) -> str:
        return self.attribute_code

    def to_params(self, *, both_spellings: bool = False) -> dict[str, Any]:
        if both_spellings:
            return {"attribute_code": self.attribute_code, "name": self.attribute_code, "value": self.value}
        return {"attribute_code": self.attribute_code, "value": self.value}


# ---------------------------------------------------------------------------------- inbound


def _text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return value  # rejected by the str type
    if isinstance(value, int | float | Decimal):
        return str(value)
    return value


def loose_text(value: Any, default: str = "") -> str:
    """A display field: numbers become their text; null, objects and arrays the default."""
    if value is None or isinstance(value, Mapping | list):
        return default
    return str(value).strip() if not isinstance(value, str) else value


def _required(v: str) -> str:
    if not v.strip():
        raise ValueError("must not be empty")
    return v.strip()


def _required_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise ValueError("is required (non-empty string)")
    return str(value).strip()


def _amount(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError("expected a number")
    if isinstance(value, float | int):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
    return value


def loose_decimal(value: Any) -> Decimal | None:
    """A number from a JSON number or a numeric string; anything else ``None``."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, str) and value.strip():
        try:
            out = Decimal(value.strip())
        except InvalidOperation:
            return None
        return out if out.is_finite() else None
    return None


def _line_number(value: Any) -> int | None:
    number = loose_decimal(value)
    return int(number) if number is not None else None


def _list_or_empty(value: Any) -> Any:
    return value if isinstance(value, list | tuple) else []


Text = Annotated[str, BeforeValidator(_text)]
LooseText = Annotated[str, BeforeValidator(loose_text)]
RequiredText = Annotated[Text, AfterValidator(_required)]
RequiredId = Annotated[str, BeforeValidator(_required_id)]
Amount = Annotated[Decimal | None, BeforeValidator(_amount)]
LooseDecimal = Annotated[Decimal | None, BeforeValidator(loose_decimal)]
LineNumber = Annotated[int | None, BeforeValidator(_line_number)]
#: a list that is simply empty when the peer sent something else (``null``, a string, …)
LooseList = BeforeValidator(_list_or_empty)


class InboundModel(BaseModel):
    """Base of inbound params: frozen, unknown members kept (peers add fields)."""

    model_config = ConfigDict(extra="allow", frozen=True)


M = TypeVar("M", bound=BaseModel)


def describe(root: str, err: ValidationError) -> str:
    """One line naming the failing fields (the first five)."""
    parts = []
    for e in err.errors(include_url=False):
        loc = ".".join(str(p) for p in (root, *e["loc"]))
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts[:5]) + (f" (+{len(parts) - 5} more)" if len(parts) > 5 else "")


def section(params: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``params[key]``, which must be an object. Raises ``InvalidPayload``."""
    body = params.get(key) if isinstance(params, Mapping) else None
    if not isinstance(body, Mapping):
        raise InvalidPayload(f"params.{key} must be an object")
    return body


def parse(model: type[M], params: Mapping[str, Any], key: str | None = None) -> M:
    """Validate ``params[key]`` (or ``params`` itself) as ``model``. Raises ``InvalidPayload``."""
    body = section(params, key) if key is not None else params
    try:
        return model.model_validate(dict(body))
    except ValidationError as e:
        raise InvalidPayload(describe(key or "params", e)) from None
