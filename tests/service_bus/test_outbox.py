"""``outbox.enqueue_many``: the same rows as ``enqueue`` / the model, ids in order, dedupe semantics."""

from __future__ import annotations

from typing import Any

import pytest
from django.forms.models import model_to_dict

from mcom.service_bus import outbox
from mcom.service_bus.models import LoggedMessage

pytestmark = pytest.mark.django_db

_VARYING = ("id", "message_id", "entity_key", "dedupe_key", "payload", "next_attempt_at", "created_at", "updated_at")


def _row(pk: int) -> dict[str, Any]:
    return model_to_dict(LoggedMessage.objects.get(pk=pk))


def test_rows_are_those_of_enqueue_with_every_default(routes: Any) -> None:
    one = outbox.enqueue(routes.OUT_DELEGATE, {"order": {"id": "1", "name": "Zoë"}}, entity_key="order:1")
    [many] = outbox.enqueue_many(routes.OUT_DELEGATE, [outbox.OutboxItem({"order": {"id": "1", "name": "Zoë"}},
                                                                         entity_key="order:2")])
    a, b = _row(one.pk), _row(many)
    assert {k: v for k, v in a.items() if k not in _VARYING} == {k: v for k, v in b.items() if k not in _VARYING}
    assert b["payload"] == a["payload"] == '{"order":{"id":"1","name":"Zoë"}}'
    assert (b["entity_key"], b["dedupe_key"], b["status"], b["attempts"], b["locked_until"], b["last_error"],
            b["result"], b["processed_at"], b["kind"], b["direction"]) == (
        "order:2", None, LoggedMessage.NEW, 0, None, "", "", None, LoggedMessage.KIND_DELEGATE, LoggedMessage.OUT)
    m = LoggedMessage.objects.get(pk=many)
    assert m.created_at == m.updated_at == m.next_attempt_at
    assert m.created_at.tzinfo is not None
    assert m.created_at >= one.created_at
    assert len(m.message_id) == 36
    assert m.message_id != one.message_id


def test_ids_follow_the_items_over_several_statements(routes: Any) -> None:
    items = [outbox.OutboxItem({"n": i}, entity_key=f"p:{i}") for i in range(1_234)]
    ids = outbox.enqueue_many(routes.OUT_EVENT, items)
    assert len(set(ids)) == 1_234
    stored = dict(LoggedMessage.objects.filter(pk__in=ids).values_list("id", "entity_key"))
    assert [stored[pk] for pk in ids] == [f"p:{i}" for i in range(1_234)]
    assert ids == sorted(ids)


def test_dedupe_replaces_the_waiting_row_and_the_last_item_of_a_key_wins(routes: Any) -> None:
    waiting = outbox.enqueue(routes.OUT_EVENT, {"v": 0}, entity_key="p:a", dedupe_key="a")
    ids = outbox.enqueue_many(routes.OUT_EVENT, [
        outbox.OutboxItem({"v": 1}, entity_key="p:a", dedupe_key="a"),
        outbox.OutboxItem({"v": 1}, entity_key="p:b", dedupe_key="b"),
        outbox.OutboxItem({"v": 1}, entity_key="p:x"),
        outbox.OutboxItem({"v": 2}, entity_key="p:b", dedupe_key="b"),
        outbox.OutboxItem({"v": 2}, entity_key="p:a", dedupe_key="a"),
    ])
    assert len(ids) == 3
    assert ids[0] == waiting.pk
    assert LoggedMessage.objects.count() == 3
    assert [(r["entity_key"], r["payload"]) for r in (_row(pk) for pk in ids)] == [
        ("p:a", '{"v":2}'), ("p:b", '{"v":2}'), ("p:x", '{"v":1}')]
    assert outbox.enqueue_many(routes.OUT_EVENT, []) == []
