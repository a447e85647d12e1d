"""The concurrent sender: many OMS requests in flight across entities, one at a time per entity.

One :class:`Pipeline` per send pass. The calling thread (the worker's outbound lane, a command,
the order export's page send) owns the database: it claims rows (:func:`mcom.service_bus.log.claim`),
starts their sends on a thread pool of ``[queue] send_concurrency`` threads (HTTP only: a sending
thread never touches the database) and records every outcome as soon as it arrives. Rules:

- **Per-entity order, exactly once.** The claimed rows of one entity form a *chain*, sent one
  after another: the next row of an entity starts only after the previous one's success is
  recorded (``complete`` + its ``on_sent`` hooks, one transaction). A failure, a failing hook or a
  lost claim releases the rest of the chain unsent. Rows of other entities are not affected. The
  claim itself never hands out a row whose entity has an earlier open row (one in flight
  included), so two passes — or two workers on two hosts — never send one entity concurrently.
- **Recorded before the next.** Outcomes are recorded as they come back, in small groups (one
  transaction; ``on_sent_many`` per run of one method): finished sends wait for the next ones to
  finish at most :data:`GROUP_SECONDS` and never more than ``send_concurrency`` of them, a failure
  or an entity with a next message waiting is recorded at once, and nothing of an entity starts
  before its previous success is recorded; with ``send_concurrency`` > 1, sends of other entities
  are started into the free slots while a group of successes is being recorded. A worker killed
  mid-pass re-sends at most what was in flight or waiting to be recorded (≤ 2 ×
  ``send_concurrency``; one with ``send_concurrency = 1``; the message ids are stable and the OMS
  ignores duplicates) — never a batch. A group's hooks run without savepoints; when one raises, the group's transaction is rolled
  back and recorded again a message at a time, each hook in its own savepoint, so only the failing
  message is parked (with its reason).
- **Leases.** Every held row (waiting, in flight) is renewed while the pass runs, when less than
  ``max(lease_seconds / 2, message_time_limit + 1)`` is left; a row whose claim was taken over is
  dropped (not recorded). Rows not started when the pass stops (stop requested, deadline,
  ``limit``, or ``give_up`` exhausted by failures in a row: the OMS looks down) are released with
  their attempt given back. After a failed send, one request at a time is in flight until one
  succeeds again (an OMS that looks down gets a probe, not a burst).
- **Refill.** With a ``refill`` callable (a draining pass) the pipeline claims more rows whenever
  fewer than ``send_concurrency`` sends are ready and a quarter of a batch is free, holding at most
  ``max(batch_size, 2 × send_concurrency)`` rows: k workers share a backlog by batches.

``send_concurrency = 1`` sends in the calling thread (no pool). ``[queue] message_time_limit``
bounds each send in either case (the ``time_limit`` the worker passes works in any thread), besides
the OMS client's connect/read timeouts.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from mcom import envconfig
from mcom.service_bus import events, registry
from mcom.service_bus import log as message_log
from mcom.service_bus.errors import (
    InvalidPayload,
    MessageError,
    OmsError,
    PermanentError,
    RetryLater,
    TimeLimitExceeded,
)
from mcom.service_bus.log import Claimed, ClaimLost
from mcom.service_bus.models import LoggedMessage as LM
from mcom.service_bus.retry import RetryPolicy

if TYPE_CHECKING:
    from mcom.service_bus.client import OmsClient

log = logging.getLogger("mcom.service_bus.worker")

__all__ = ["Pipeline", "send_claimed"]

Outcome = tuple[registry.OutboundMessage, Any, BaseException | None]


# ------------------------------------------------------------------------------ one send


def send_one(c: Claimed, queue: envconfig.QueueConfig, client: OmsClient | None,
             time_limit: Callable[[float], Any] | None = None) -> Outcome:
    """Send one claimed row (HTTP only, no database): ``(message for the hooks, result, error)``."""
    from contextlib import nullcontext

    from mcom.service_bus.client import get_client

    route = registry.outbound_route(c.topic)
    error: BaseException | None = None
    result: Any = None
    params: dict[str, Any] = {}
    kind = c.kind or (route.kind if route else "")
    try:
        loaded = json.loads(c.payload)
        if not isinstance(loaded, dict):
            raise InvalidPayload("stored params are not a JSON object")
        params = loaded
        with time_limit(queue.message_time_limit) if time_limit is not None else nullcontext():
            result = (client or get_client()).send(kind, c.topic, params, message_id=c.message_id)
    except (MessageError, OmsError) as e:
        error = e
    except ValueError as e:  # unknown kind, payload not JSON
        error = PermanentError(str(e))
    except TimeLimitExceeded as e:
        error = RetryLater(str(e))
    except envconfig.ConfigError as e:
        error = RetryLater(str(e))
    except Exception as e:  # noqa: BLE001 - a bug in a sender is recorded on the message and retried
        log.exception("outbound #%d %s: sending raised", c.id, c.topic)
        error = e
    return registry.OutboundMessage(c.id, c.topic, c.message_id, c.entity_key, params, c.attempts + 1), result, error


def batch_client() -> OmsClient | None:
    """The OMS client for one pass (None while ``[service_bus]`` is incomplete: each send then fails
    with the reason and is retried)."""
    from mcom.service_bus.client import get_client

    try:
        return get_client()
    except envconfig.ConfigError:
        return None


# ----------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class Sent:
    """A delivered message whose outcome is not recorded yet."""

    claim: Claimed
    message: registry.OutboundMessage
    result: Any


def _runs(sent: Sequence[Sent]) -> list[tuple[registry.OutboundRoute, Sequence[Sent]]]:
    """``sent`` cut into runs of one method, in order, with their route (runs without hooks left out)."""
    out: list[tuple[registry.OutboundRoute, Sequence[Sent]]] = []
    start = 0
    while start < len(sent):
        topic = sent[start].claim.topic
        stop = start
        while stop < len(sent) and sent[stop].claim.topic == topic:
            stop += 1
        route = registry.outbound_route(topic)
        if route is not None and (route.on_sent_many is not None or route.on_sent is not None):
            out.append((route, sent[start:stop]))
        start = stop
    return out


def _call_hooks(route: registry.OutboundRoute, items: Sequence[Sent]) -> None:
    if route.on_sent_many is not None:
        route.on_sent_many([(s.message, s.result) for s in items])
    elif route.on_sent is not None:
        for s in items:
            route.on_sent(s.message, s.result)


def _run_sent_hooks(sent: Sequence[Sent]) -> dict[int, str]:
    """Run the ``on_sent``/``on_sent_many`` hooks of ``sent`` one message at a time, each in its own
    savepoint; returns ``{log id: error}`` of the messages whose hook failed (their writes rolled back)."""
    failed: dict[int, str] = {}
    for route, run in _runs(sent):
        for s in run:
            try:
                with transaction.atomic():
                    _call_hooks(route, [s])
            except Exception as e:  # noqa: BLE001 - the OMS has it; record the hook failure, never resend
                log.exception("outbound #%d %s: on_sent hook failed", s.claim.id, s.claim.topic)
                failed[s.claim.id] = f"delivered, but on_sent failed: {type(e).__name__}: {e}"[:4000]
    return failed


class _HookFailed(Exception):
    """A hook raised in the savepoint-free recording: the group is recorded again, one by one."""


def record_sent(sent: Sequence[Sent], token: datetime, *, one_by_one: bool = False) -> dict[int, str | None]:
    """Mark delivered messages of one claim token ``complete`` and run their hooks, in one
    transaction; returns their new statuses (None: claim lost — nothing recorded for that one).

    The hooks of a group run as one call per method and without savepoints (each costs two
    statements, a round trip each on PostgreSQL); when one raises, the whole transaction is rolled
    back and recorded again with a savepoint per message (``one_by_one``), so the failing message
    is parked with its reason and the others complete."""
    if not sent:
        return {}
    failed: dict[int, str] = {}
    try:
        with transaction.atomic():
            message_log.complete_many([(s.claim.id, s.result) for s in sent], token)
            if one_by_one:
                failed = _run_sent_hooks(sent)
                if failed:
                    message_log.park_delivered(failed)
            else:
                for route, run in _runs(sent):
                    try:
                        _call_hooks(route, run)
                    except Exception as e:  # noqa: BLE001 - found message by message below
                        raise _HookFailed(route.method) from e
    except _HookFailed as e:
        log.info("outbound %s: on_sent for %d messages failed; recording them one by one", e, len(sent))
        return record_sent(sent, token, one_by_one=True)
    except ClaimLost:
        if len(sent) == 1:
            log.warning("outbound #%d: claim lost while sending (lease too short?)", sent[0].claim.id)
            return {sent[0].claim.id: None}
        out: dict[int, str | None] = {}
        for s in sent:  # rare: some leases were taken over; record the others one by one
            out.update(record_sent([s], token, one_by_one=one_by_one))
        return out
    for s in sent:
        if s.claim.id in failed:
            events.parked(s.claim.id, s.claim.topic, s.claim.entity_key, failed[s.claim.id], direction=LM.OUT)
    return {s.claim.id: LM.ERROR if s.claim.id in failed else LM.COMPLETE for s in sent}


def record_failure(c: Claimed, token: datetime, message: registry.OutboundMessage, error: BaseException,
                   queue: envconfig.QueueConfig) -> str | None:
    """Record a failed send (``retry`` with backoff or ``error``) and run ``on_failed``; None: claim lost."""
    route = registry.outbound_route(c.topic)
    decision = RetryPolicy.from_queue(queue).after(error, message.attempts, timezone.now())
    status = message_log.failed_status(decision)
    with transaction.atomic():
        if not message_log.fail(replace(c, token=token), decision):
            log.warning("outbound #%d: claim lost while sending (lease too short?)", c.id)
            return None
        log.warning("outbound #%d %s attempt %d failed → %s: %s", c.id, c.topic, message.attempts, status,
                    decision.reason)
        if route is not None and route.on_failed is not None:
            try:
                with transaction.atomic():
                    route.on_failed(message, decision.reason, decision.will_retry)
            except Exception:  # noqa: BLE001 - a hook bug must not lose the status update
                log.exception("outbound #%d %s: on_failed hook failed", c.id, c.topic)
    events.attempt_failed(log_id=c.id, direction=LM.OUT, topic=c.topic, entity_key=c.entity_key,
                          attempt=message.attempts, status=status, reason=decision.reason, error=error)
    return status


# ------------------------------------------------------------------------------ the pool


class _Inline:
    """An executor that runs the send in the calling thread (``send_concurrency = 1``)."""

    def submit(self, fn: Callable[..., Outcome], *args: Any) -> Future[Outcome]:
        future: Future[Outcome] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as e:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(e)
        return future


_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(size: int) -> ThreadPoolExecutor:
    """The process's sending threads (``size`` of them; created once per process and size)."""
    key = (os.getpid(), size)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="mcom-send")
        return pool


# -------------------------------------------------------------------------- the pipeline


Refill = Callable[[int], list[Claimed]]

#: finished sends wait at most this long to be recorded together with the next ones to finish
GROUP_SECONDS = 0.01


class Pipeline:
    """One send pass: chains of claimed rows per entity, up to ``concurrency`` sends in flight.

    ``stop()`` is checked between sends; ``refill(n)`` (optional) claims up to ``n`` more rows.
    """

    def __init__(self, queue: envconfig.QueueConfig, *, concurrency: int | None = None,
                 give_up: RetryPolicy | None = None, stop: Callable[[], bool] = lambda: False,
                 time_limit: Callable[[float], Any] | None = None) -> None:
        self.queue = queue
        self.concurrency = max(1, concurrency if concurrency is not None else queue.send_concurrency)
        self.give_up = give_up
        self.stop = stop
        self.client = batch_client()
        self.executor: Any = _Inline() if self.concurrency == 1 else _pool(self.concurrency)
        self.time_limit = time_limit
        self.statuses: dict[int, str | None] = {}
        self.tokens: dict[int, datetime] = {}  # every held row (waiting or in flight) → its current token
        self.chains: dict[str, deque[Claimed]] = {}  # entity → its claimed rows not started, in id order
        self.busy: set[str] = set()  # entities with a send in flight
        self.inflight: dict[Future[Outcome], Claimed] = {}
        self.unrecorded: list[tuple[Claimed, Outcome]] = []  # finished sends waiting to be recorded as a group
        self.unrecorded_since = 0.0
        self.attempted = 0
        self.streak = 0
        self.stopping = False
        self.renew_below = max(queue.lease_seconds / 2, queue.message_time_limit + 1.0)

    # -- rows held

    def add(self, rows: Sequence[Claimed]) -> None:
        for c in rows:
            self.tokens[c.id] = c.token
            self.chains.setdefault(c.entity_key, deque()).append(c)

    def _held(self) -> int:
        return len(self.tokens)

    def _ready(self) -> list[str]:
        return [k for k, chain in self.chains.items() if chain and k not in self.busy]

    def _drop_chain(self, key: str) -> None:
        """Release the rows of ``key`` not started (an earlier row of the entity did not complete)."""
        chain = self.chains.pop(key, None)
        if chain:
            message_log.release([replace(c, token=self.tokens.pop(c.id)) for c in chain if c.id in self.tokens])

    def _release_all(self) -> None:
        for key in list(self.chains):
            if key not in self.busy:
                self._drop_chain(key)
            else:  # keep the busy entity's chain object, give its waiting rows back
                chain = self.chains[key]
                message_log.release([replace(c, token=self.tokens.pop(c.id)) for c in chain if c.id in self.tokens])
                chain.clear()

    # -- leases

    def _renew_if_due(self) -> None:
        if not self.tokens:
            return
        soonest = min(self.tokens.values())
        if (soonest - timezone.now()).total_seconds() >= self.renew_below:
            return
        by_token: dict[datetime, list[int]] = {}
        for log_id, token in self.tokens.items():
            by_token.setdefault(token, []).append(log_id)
        lost: set[int] = set()
        for token, ids in by_token.items():
            renewed, kept = message_log.renew(ids, token, self.queue.lease_seconds)
            for log_id in kept:
                self.tokens[log_id] = renewed
            lost.update(set(ids) - kept)
        for log_id in lost:
            log.warning("outbound #%d: claim lost (lease taken over); not sent or recorded by this worker", log_id)
            del self.tokens[log_id]
            self.statuses[log_id] = None
        for chain in self.chains.values():
            for c in [c for c in chain if c.id in lost]:
                chain.remove(c)

    # -- sending

    def _start(self, key: str) -> None:
        c = self.chains[key].popleft()
        self.busy.add(key)
        self.attempted += 1
        future = self.executor.submit(send_one, c, self.queue, self.client, self.time_limit)
        self.inflight[future] = c

    def _record(self, done: Sequence[tuple[Claimed, Outcome]]) -> None:
        """Record finished sends: successes together (grouped by token), failures one by one."""
        ok: dict[datetime, list[Sent]] = {}
        for c, (message, result, error) in done:
            self.busy.discard(c.entity_key)
            token = self.tokens.pop(c.id, None)
            if token is None:  # the claim was lost while the request was in flight
                self.statuses[c.id] = None
                self._drop_chain(c.entity_key)
                continue
            if error is None:
                self.streak = 0
                ok.setdefault(token, []).append(Sent(c, message, result))
                continue
            self.streak += 1
            self.statuses[c.id] = record_failure(c, token, message, error, self.queue)
            self._drop_chain(c.entity_key)
        for token, sent in ok.items():
            recorded = record_sent(sent, token)
            self.statuses.update(recorded)
            for s in sent:
                if recorded[s.claim.id] != LM.COMPLETE:
                    self._drop_chain(s.claim.entity_key)
        for key in [k for k, chain in self.chains.items() if not chain and k not in self.busy]:
            del self.chains[key]

    def _should_stop(self, deadline: float | None, limit: int | None) -> bool:
        if self.stop():
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return True
        if limit is not None and self.attempted >= limit:
            return True
        return self.give_up is not None and self.give_up.exhausted(self.streak)

    def run(self, refill: Refill | None = None, *, deadline: float | None = None,
            limit: int | None = None) -> dict[int, str | None]:
        """Send until nothing is held (and ``refill`` finds nothing) or the pass stops; returns the
        new status of each attempted row (None: claim lost)."""
        can_claim = refill is not None
        try:
            while True:
                if not self.stopping and self._should_stop(deadline, limit):
                    self.stopping = True
                    self._release_all()
                if not self.stopping:
                    self._renew_if_due()
                    self._start_ready(limit, failing=bool(self.streak))
                    if refill is not None and can_claim and len(self._ready()) < self.concurrency:
                        room = self._room(limit)
                        idle = not self.inflight and not self._ready()
                        if room > 0 and (idle or room >= self._min_claim()):
                            rows = refill(room)
                            self.add(rows)
                            can_claim = bool(rows)
                            if rows:
                                continue
                if not self.inflight:
                    if self.stopping or not self._ready():
                        break
                    continue
                finished, _ = wait(list(self.inflight), timeout=self._wait_seconds(), return_when=FIRST_COMPLETED)
                done = [(self.inflight.pop(f), f.result()) for f in finished]
                if done:
                    can_claim = refill is not None
                    if not self.unrecorded:
                        self.unrecorded_since = time.monotonic()
                    self.unrecorded += done
                if self.unrecorded and self._record_now():
                    group, self.unrecorded = self.unrecorded, []
                    if self.concurrency > 1 and not self.stopping and all(o[2] is None for _, o in group):
                        # other entities' sends go out while this group is recorded (the group's own
                        # entities stay busy until it is); after a failure, record it first. Not with
                        # one slot: there a send runs in this thread and would finish unrecorded too
                        self._start_ready(limit, failing=bool(self.streak))
                    self._record(group)
        finally:
            self._finish_inflight()
        return self.statuses

    def _record_now(self) -> bool:
        """Whether the finished sends are recorded now rather than with the next ones to finish: as
        soon as one failed, an entity has a next message waiting for it, ``concurrency`` of them
        are waiting, nothing else is in flight, the pass stops, or :data:`GROUP_SECONDS` passed."""
        if self.stopping or not self.inflight or len(self.unrecorded) >= self.concurrency:
            return True
        if any(outcome[2] is not None or self.chains.get(c.entity_key) for c, outcome in self.unrecorded):
            return True
        return time.monotonic() - self.unrecorded_since >= GROUP_SECONDS

    def _start_ready(self, limit: int | None, *, failing: bool) -> None:
        """Start sends of ready entities (not busy: an entity whose send is in flight or not yet
        recorded waits) into the free slots. After a failure, one request at a time until one
        succeeds: an OMS that looks down gets a probe, not a burst."""
        width = 1 if failing else self.concurrency
        for key in self._ready():
            if len(self.inflight) >= width or (limit is not None and self.attempted >= limit):
                break
            self._start(key)

    def _room(self, limit: int | None) -> int:
        """How many more rows a claim may take: up to ``max(batch_size, 2 × concurrency)`` held."""
        room = max(self.queue.batch_size, 2 * self.concurrency) - self._held()
        if limit is not None:
            room = min(room, limit - self.attempted - sum(len(c) for c in self.chains.values()))
        return room

    def _min_claim(self) -> int:
        """The smallest claim worth its scan while sends are under way (claims are not free: each
        scans the open rows from the oldest)."""
        return max(self.concurrency, self.queue.batch_size // 4)

    def _wait_seconds(self) -> float:
        if self.unrecorded:
            return max(GROUP_SECONDS - (time.monotonic() - self.unrecorded_since), 0.0)
        if not self.tokens:
            return 1.0
        left = (min(self.tokens.values()) - timezone.now()).total_seconds() - self.renew_below
        return float(min(max(left, 0.05), 1.0))

    def _finish_inflight(self) -> None:
        """On the way out (also on an exception): wait for the sends in flight and record them, then
        give back everything still held."""
        if self.inflight or self.unrecorded:
            finished, _ = wait(list(self.inflight))
            done = self.unrecorded + [(self.inflight.pop(f), f.result()) for f in finished]
            self.unrecorded = []
            try:
                self._record(done)
            except Exception:  # noqa: BLE001 - the database may be gone; the leases expire
                log.exception("outbound: could not record %d sends in flight; their leases expire", len(done))
        if self.tokens:
            try:
                self._release_all()
            except Exception:  # noqa: BLE001 - as above
                log.exception("outbound: could not release %d claimed rows; their leases expire", len(self.tokens))


def send_claimed(batch: Sequence[Claimed], queue: envconfig.QueueConfig, *, give_up: RetryPolicy | None = None,
                 stop: Callable[[], bool] = lambda: False, concurrency: int | None = None,
                 time_limit: Callable[[float], Any] | None = None) -> dict[int, str | None]:
    """Send an already claimed batch (per-entity chains, concurrently across entities); returns the
    new status of each attempted row (None: claim lost). Rows not attempted are released."""
    if not batch:
        return {}
    pipeline = Pipeline(queue, concurrency=concurrency, give_up=give_up, stop=stop, time_limit=time_limit)
    pipeline.add(batch)
    return pipeline.run()
