"""Batched inbound commit (``worker.tick``): a claimed batch commits every ``[worker] commit_every``
messages, each message in a savepoint — a raising handler and a lost claim roll back only their
own message; the others complete, nothing is applied twice, the failure keeps its reason."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from mcom import envconfig
from mcom.service_bus import inbox, worker
from mcom.service_bus.models import LoggedMessage

from .bus_handlers import COUNT, FAIL

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("commit_every", [1, 2, 50])
def test_a_batch_with_a_raising_handler_and_a_lost_claim_completes_the_others_once(
        env: Any, effects: Any, commit_every: int) -> None:
    env(worker__commit_every=commit_every, worker__commit_seconds=60, queue__backoff_base_seconds=0)
    first = inbox.store_inbound(COUNT, {"entity": "a", "n": 1}).pk
    bad = inbox.store_inbound(FAIL, {"entity": "b", "mode": "crash"}).pk
    after_bad = inbox.store_inbound(COUNT, {"entity": "b", "n": 2}).pk  # same entity as the bad one: held back
    stolen = inbox.store_inbound(COUNT, {"entity": "c", "n": 3}).pk
    last = inbox.store_inbound(COUNT, {"entity": "d", "n": 4}).pk
    batch = worker._claim(LoggedMessage.IN, 10)
    assert [c.id for c in batch] == [first, bad, after_bad, stolen, last]
    other = timezone.now() + timedelta(seconds=999)  # another worker took the lease of ``stolen`` over
    with connection.cursor() as cur:
        cur.execute("UPDATE mcom_logged_messages_queue SET locked_until = %s WHERE id = %s",
                    [connection.ops.adapt_datetimefield_value(other), stolen])

    done = worker._tick_inbound(batch, envconfig.current().queue)

    rows = {r.pk: r for r in LoggedMessage.objects.filter(pk__in=[first, bad, after_bad, stolen, last])}
    assert done == 3  # first, bad (recorded as a failure), last; the lost claim is not counted
    assert rows[first].status == LoggedMessage.COMPLETE
    assert rows[last].status == LoggedMessage.COMPLETE
    assert rows[bad].status == LoggedMessage.RETRY
    assert rows[bad].attempts == 1
    assert "ZeroDivisionError" in rows[bad].last_error
    assert rows[after_bad].status == LoggedMessage.NEW  # given back unprocessed: its entity's earlier row failed
    assert rows[after_bad].attempts == 0
    assert rows[stolen].status == LoggedMessage.PROCESSING  # left to the worker that holds it
    assert rows[stolen].locked_until == other
    assert sorted(e[0] for e in effects.effects()) == [first, last]  # applied once each, stolen not at all
    assert [e[0] for e in effects.effects()] == [first, last]
