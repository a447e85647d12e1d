"""The concurrent sender under kill -9: many requests in flight across entities, one entity's
messages strictly in order, every message delivered, re-sends bounded by what was in flight or waiting to be recorded.

Product updates of 12 SKUs × 6 versions (no dedupe key: every version is its own message, in id
order per SKU) go to the sandbox through ``oms:queue:process`` with ``send_concurrency = 4`` and a
40 ms OMS latency; the worker is killed with SIGKILL in a loop, then run until everything is sent.
Counted from the sandbox's journal (the order in which the OMS applied the calls): deliveries per
message id, versions per SKU in arrival order, the final name per SKU.
"""

from __future__ import annotations

import signal
from typing import Any

import pytest

from mcom.service_bus import methods, outbox
from mcom.service_bus.models import LoggedMessage

from .conftest import Procs, child_env, rounds, wait_for

SKUS = 12
VERSIONS = 6
CONCURRENCY = 4


def applied_at_sandbox(api: Any) -> list[tuple[str, str, int]]:
    """(message id, sku, version) of every product update the sandbox applied, oldest first."""
    entries = api.journal(method=methods.PRODUCT_UPDATED, direction="incoming", status="SUCCESS", limit=100_000)
    out = []
    for e in reversed(entries):  # the journal lists newest first
        product = ((e.get("payload") or {}).get("params") or {}).get("product") or {}
        out.append((str(e.get("message_id")), str(product.get("sku")), int(str(product.get("name"))[1:])))
    return out


@pytest.mark.django_db(transaction=True)
def test_concurrent_sender_killed_in_a_loop_keeps_entity_order_and_delivers_every_message(
        wired: Any, procs: Procs) -> None:
    api = wired.sandbox.api
    ids = [outbox.enqueue(methods.PRODUCT_UPDATED, {"product": {"sku": f"SKU-{k}", "name": f"v{v}"}},
                          entity_key=f"product:SKU-{k}").pk
           for v in range(VERSIONS) for k in range(SKUS)]
    api.faults(latency_ms=40)
    env = child_env(MCOM_QUEUE__SEND_CONCURRENCY=str(CONCURRENCY))
    kills = 0
    for r in range(rounds(3, 15)):
        before = len(applied_at_sandbox(api))
        proc = procs.spawn("oms:queue:process", "--max-seconds", "120", env=env)

        def progressed(b: int = before) -> bool:
            nonlocal proc
            if len(applied_at_sandbox(api)) >= b + 6:
                return True
            if proc.poll() is not None:  # one-shot: it found only the killed claims, whose leases still held
                proc = procs.spawn("oms:queue:process", "--max-seconds", "120", env=env)
            return False

        wait_for(f"round {r}: the sender makes progress", progressed, 60)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1

    final = procs.spawn("oms:queue:process", "--max-seconds", "120", env=env)

    def finished() -> bool:
        nonlocal final
        if not LoggedMessage.objects.filter(pk__in=ids).exclude(status=LoggedMessage.COMPLETE).exists():
            return True
        if final.poll() is not None:  # one-shot: run it again until the killed claims' leases expired
            final = procs.spawn("oms:queue:process", "--max-seconds", "120", env=env)
        return False

    wait_for("everything sent after the kills", finished, 120)
    applied = applied_at_sandbox(api)
    by_sku: dict[str, list[int]] = {}
    for _, sku, version in applied:
        by_sku.setdefault(sku, []).append(version)
    out_of_order = sum(1 for versions in by_sku.values() for a, b in zip(versions, versions[1:], strict=False) if b < a)
    resent = len(applied) - len({mid for mid, _, _ in applied})
    print(f"concurrent sender kill -9 loop: kills {kills}, messages {len(ids)} over {SKUS} entities, "
          f"concurrency {CONCURRENCY}, applied at the OMS {len(applied)}, re-sent {resent} "
          f"({resent / max(kills, 1):.1f} per kill; ≤ {2 * CONCURRENCY} allowed: in flight + waiting to be recorded), out of order {out_of_order}")
    assert {mid for mid, _, _ in applied} == set(LoggedMessage.objects.filter(pk__in=ids).values_list(
        "message_id", flat=True))  # every message delivered
    assert out_of_order == 0  # a re-send repeats the version in flight, never an older one after a newer
    assert {sku: sorted(set(v)) for sku, v in by_sku.items()} == {f"SKU-{k}": list(range(VERSIONS)) for k in range(SKUS)}
    assert all(api.product(f"SKU-{k}")["name"] == f"v{VERSIONS - 1}" for k in range(SKUS))  # the newest wins
    assert resent <= 2 * CONCURRENCY * kills
