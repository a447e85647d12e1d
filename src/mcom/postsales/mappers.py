"""Pure mapping between the store's returns/credit memos and the OMS messages (no DB writes, no HTTP).

- :func:`authorize_message`: a validated return request → ``return_management.authorize`` params.
- :func:`normalize_status`: OMS status codes compared case-insensitively; unknown codes verbatim (§12 #13).
- :func:`refund_line_amounts`, :func:`credit_memo_totals`, :func:`refund_qty`: a refund line → the
  numbers of a credit memo line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from mcom.postsales.messages import (
    REQUEST_ID_ATTRIBUTE,
    AuthorizeLine,
    CustomAttribute,
    RefundLine,
    ReturnAuthorize,
)

ZERO = Decimal("0")
CENT = Decimal("0.0001")

# --------------------------------------------------------------------------- statuses

RETURN_REQUESTED = "REQUESTED"
RETURN_APPROVED = "APPROVED"
RETURN_REJECTED = "REJECTED"
RETURN_CANCELLED = "CANCELLED"
#: return statuses known to us (§9 plus the usual RMA life cycle); anything else is kept verbatim
RETURN_STATUSES = frozenset(
    {RETURN_REQUESTED, RETURN_APPROVED, RETURN_REJECTED, RETURN_CANCELLED, "CANCELED", "RECEIVED", "CLOSED",
     "COMPLETE", "COMPLETED", "DECLINED", "REFUNDED"}
)
#: a return (or return line) in one of these statuses no longer holds its quantity
RETURN_VOID_STATUSES = frozenset({RETURN_REJECTED, RETURN_CANCELLED, "CANCELED", "DECLINED"})

REFUND_RELEASED = "RELEASED"
REFUND_PENDING_RELEASE = "PENDINGRELEASE"
REFUND_STATUSES = frozenset({REFUND_RELEASED, REFUND_PENDING_RELEASE, "REQUESTED", "REFUNDED", "FAILED",
                             "CANCELLED", "CANCELED"})


def normalize_status(code: str, known: frozenset[str]) -> str:
    """Upper-case a known code (``approved`` → ``APPROVED``); keep an unknown code verbatim (stripped)."""
    code = code.strip()
    upper = code.upper()
    return upper if upper in known else code


def is_void(status: str) -> bool:
    """True when a return/line status means the quantity is free to be returned again."""
    return status.strip().upper() in RETURN_VOID_STATUSES


# --------------------------------------------------------------------------- authorize (§8.7)


@dataclass(frozen=True)
class ReturnedLine:
    """One validated return line: the order line as exported plus what the customer says."""

    line_id: str
    line_number: int
    sku: str
    qty: Decimal
    reason: str
    reason_description: str
    condition: str
    condition_description: str


def authorize_message(
    *,
    order_id: str,
    sales_channel_id: str,
    source_id: str,
    user: str,
    request_id: str,
    lines: Sequence[ReturnedLine],
    extra_attributes: Iterable[tuple[str, str]] = (),
) -> ReturnAuthorize:
    """The ``return_management.authorize`` message of a validated return request.

    ``request_id`` travels as custom attribute :data:`REQUEST_ID_ATTRIBUTE` so the OMS answer
    (``return_management.updated``) can be matched to the local RMA before its RMA number is known.
    """
    attributes = (CustomAttribute(REQUEST_ID_ATTRIBUTE, request_id),) + tuple(
        CustomAttribute(code, value) for code, value in extra_attributes if code != REQUEST_ID_ATTRIBUTE
    )
    return ReturnAuthorize(
        order_id=order_id,
        sales_channel_id=sales_channel_id,
        source_id=source_id,
        user=user,
        custom_attributes=attributes,
        lines=tuple(
            AuthorizeLine(
                id=line.line_id,
                line_number=line.line_number,
                sku=line.sku,
                quantity=line.qty,
                reason=line.reason,
                reason_description=line.reason_description,
                condition=line.condition,
                condition_description=line.condition_description,
            )
            for line in lines
        ),
    )


# --------------------------------------------------------------------------- refund (§8.9)


@dataclass(frozen=True)
class LineAmounts:
    """Net, tax and gross refunded for one line, and the tax rate in percent."""

    net: Decimal
    tax: Decimal
    gross: Decimal
    tax_percent: Decimal


def tax_percent(rate: Decimal | None) -> Decimal:
    """A rate as percent: ``21`` stays 21, a fraction ``0.21`` becomes 21 (no real VAT rate is below 1 %)."""
    if rate is None:
        return ZERO
    return rate * 100 if ZERO < rate < 1 else rate


def refund_line_amounts(line: RefundLine) -> LineAmounts:
    """Sum ``payments[].details`` of a refund line. A missing net/tax/gross is derived from the other two.

    The rate is the first non-empty ``vat_rate``; when none is sent it is derived from net and tax.
    """
    net = tax = gross = ZERO
    rate: Decimal | None = None
    for payment in line.payments:
        d = payment.details
        p_net, p_tax, p_gross = d.cost_net, d.cost_vat, d.cost_gross
        if p_net is None and p_gross is not None:
            p_net = p_gross - (p_tax or ZERO)
        if p_tax is None:
            p_tax = (p_gross - p_net) if (p_gross is not None and p_net is not None) else ZERO
        if p_gross is None:
            p_gross = (p_net or ZERO) + p_tax
        net += p_net or ZERO
        tax += p_tax
        gross += p_gross
        if rate is None and d.vat_rate is not None:
            rate = d.vat_rate
    percent = tax_percent(rate) if rate is not None else (
        (tax / net * 100).quantize(CENT, ROUND_HALF_UP) if net else ZERO
    )
    return LineAmounts(net=net, tax=tax, gross=gross, tax_percent=percent)


def refund_qty(*, sent: Decimal | None, line_qty: Decimal, refundable: Decimal) -> Decimal:
    """Quantity credited for one refund line: the quantity the OMS sent (an extension; §8.9 has
    none), else what the wire line stands for (one unit, :mod:`mcom.postsales.lines`), never more
    than is still ``refundable`` and never negative."""
    qty = sent if sent is not None and sent > 0 else line_qty
    return max(ZERO, min(qty, refundable))


@dataclass(frozen=True)
class CreditMemoTotals:
    subtotal: Decimal
    tax_amount: Decimal
    grand_total: Decimal


def credit_memo_totals(item_lines: Iterable[LineAmounts], other_lines: Iterable[LineAmounts] = ()) -> CreditMemoTotals:
    """Totals of a credit memo: subtotal = net of product lines; tax and grand total include the
    other lines (shipping) too."""
    items = list(item_lines)
    others = list(other_lines)
    return CreditMemoTotals(
        subtotal=sum((a.net for a in items), ZERO),
        tax_amount=sum((a.tax for a in items + others), ZERO),
        grand_total=sum((a.gross for a in items + others), ZERO),
    )
