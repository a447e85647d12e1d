"""A malformed stock snapshot does not hold back the later snapshots of its aggregate: it is
superseded ("superseded by #N: …", status ignored) through the real inbound lane."""

from __future__ import annotations

from typing import Any

import pytest

from mcom.service_bus import inbox, methods, worker
from mcom.service_bus.models import LoggedMessage

from .conftest import snapshot, stock_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_malformed_snapshot_is_superseded_by_the_later_snapshots_of_its_aggregate(catalog: Any, eu: Any,
                                                                                      env: Any) -> None:
    env(queue__backoff_base_seconds=0, queue__max_attempts=3)
    bad = inbox.store_inbound(methods.STOCK_UPDATED, snapshot(mode="DELTA", created_on="2024-05-01 10:00:00",
                                                              **{"SKU-1": "lots"}))
    worker.run_until_idle()
    assert LoggedMessage.objects.get(pk=bad.pk).status == "error"
    later = [inbox.store_inbound(methods.STOCK_UPDATED,
                                 snapshot(mode="DELTA", created_on=f"2024-05-01 10:0{n}:00", **{"SKU-1": n}))
             for n in range(1, 6)]
    worker.run_until_idle()
    row = LoggedMessage.objects.get(pk=bad.pk)
    assert row.status == "ignored"
    assert row.last_error.startswith(f"superseded by #{later[0].pk}: InvalidPayload")
    assert set(LoggedMessage.objects.filter(pk__in=[m.pk for m in later]).values_list("status", flat=True)) == {"complete"}
    assert stock_of()["SKU-1"][0] == 5
