"""The message log's one writer: every insert into ``mcom_logged_messages_queue`` and every status change.

No other module inserts rows or changes their status (``tests/service_bus/test_log_owner.py``
enforces it), so how messages are stored, claimed and recorded changes in this one place.

Rows and columns: :data:`COLUMNS` is derived from the model once; a new row always gets the
model's defaults of a waiting message (:data:`_NEW_ROW_DEFAULTS`).

Inserts:

- inbound (:func:`insert_inbound`): ``INSERT … ON CONFLICT (direction, message_id) DO NOTHING``
  for many rows on any DB-API cursor (the group-commit stores of :mod:`~mcom.service_bus.ingest`
  use their own connection, the ORM paths Django's). Same id + same body is a re-delivery (nothing
  added); same id + a different body is a new message kept under :func:`variant_id`;
- outbound (:func:`insert_outbound_one`, :func:`insert_outbound`): the outbox's rows, many in
  one multi-row ``INSERT … RETURNING`` per chunk; :func:`replace_waiting_payloads` gives a
  waiting message with the same dedupe key the newest params instead.
- every insert wakes the worker's lane of its direction (:mod:`~mcom.service_bus.wake`: ``NOTIFY``
  in the inserting transaction on PostgreSQL, after commit on SQLite).

State machine (``new``/``retry`` → ``processing`` → ``complete``/``retry``/``error``; ``error``
→ ``ignored``/``retry`` by an operator or a superseding message):

- :func:`claim` takes due rows of one direction in id order, per-entity order kept: a row is
  eligible only when no earlier row of its entity is open (``new``/``retry``/``processing``/
  ``error``) unless that row is claimed in the same batch just before it. PostgreSQL: a
  transaction advisory lock per direction + ``SELECT … FOR UPDATE SKIP LOCKED``; SQLite: the
  conditional ``UPDATE`` inside the write transaction. A claimed row is ``processing`` with a lease
  (``locked_until``) whose value is the claim's *token*: every later change of the row is
  conditional on it (:func:`complete`, :func:`complete_many`, :func:`fail`, :func:`release`,
  :func:`renew`), so a worker whose lease was taken over changes nothing.
- :func:`supersede` (``error`` → ``ignored`` for a message replaced by a newer one),
  :func:`retry` and :func:`ignore` (operator actions), :func:`record_answer` (a synchronous query
  answered in the HTTP response).
- :func:`fail` records whether a park was *transient* (``park_transient``: the policy gave up on a
  retryable error); :func:`requeue_parked` moves such rows back to ``retry`` (cron
  ``service_bus.requeue_parked``, :mod:`~mcom.service_bus.recovery`), bounded by ``requeues``.
- state-based inbound topics (``registry.inbound(..., supersedable=True)``): a parked row becomes
  ``ignored`` "superseded by #N: <reason>" once a later row of its entity and topic exists — checked
  by the claim for the entities it finds held back by an ``error`` row, and by :func:`fail` when it
  parks one (:func:`supersede_states`).
- :func:`bulk_retry`/:func:`bulk_ignore`: operator changes of the rows a
  :class:`~mcom.service_bus.selection.MessageFilter` selects, one conditional ``UPDATE`` per chunk.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from django.db import connection, transaction
from django.utils import timezone

from mcom.service_bus import wake
from mcom.service_bus.models import Direction, Status
from mcom.service_bus.models import LoggedMessage as LM
from mcom.service_bus.retry import Decision
from mcom.service_bus.rows import InboundRow, variant_id
from mcom.service_bus.selection import MessageFilter

TABLE: str = LM._meta.db_table
#: every column but the id, in model order (what an insert writes)
COLUMNS: tuple[str, ...] = tuple(str(f.column) for f in LM._meta.concrete_fields if not f.primary_key)
#: what a new row gets besides its own values and the insert time
_NEW_ROW_DEFAULTS: dict[str, Any] = {
    "status": Status.NEW.value, "attempts": 0, "locked_until": None, "last_error": "", "result": "", "processed_at": None,
    "park_transient": False, "requeues": 0,
}
_AT_INSERT_TIME = ("next_attempt_at", "created_at", "updated_at")
#: the columns an insert passes as parameters, in :data:`COLUMNS` order: its own values, then the time
PARAM_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c not in _NEW_ROW_DEFAULTS)
_OWN = ("direction", "topic", "message_id", "kind", "entity_key", "dedupe_key", "payload")
if (*_OWN, *_AT_INSERT_TIME) != PARAM_COLUMNS:  # pragma: no cover - a model change must update the insert paths
    raise RuntimeError(f"LoggedMessage columns changed ({PARAM_COLUMNS}); update mcom.service_bus.log")
#: what a claim reads of each row
CLAIM_FIELDS = ("id", "direction", "topic", "message_id", "kind", "entity_key", "payload", "attempts", "created_at")
#: open statuses: they hold back the later messages of their entity
PENDING: tuple[str, ...] = tuple(s.value for s in LM.PENDING)
OPEN: tuple[str, ...] = tuple(s.value for s in LM.OPEN)
MAX_ERROR = 4000
MAX_ENTITY_KEY = 191

_CLAIM_LOCK = {Direction.IN.value: 0x6D636F6D01, Direction.OUT.value: 0x6D636F6D02}  # pg advisory keys ("mcom" + n)
#: open rows scanned per query while looking for eligible rows, and at most per claim
WINDOW = 500
SCAN_BUDGET = 100_000
_IN_CHUNK = 500


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):  # before int: True is an int
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def row_sql(mark: str) -> str:
    """``(…)`` of one new row: ``mark`` for each of :data:`PARAM_COLUMNS`, the defaults as literals."""
    return "(" + ", ".join(mark if c in PARAM_COLUMNS else _literal(_NEW_ROW_DEFAULTS[c]) for c in COLUMNS) + ")"


_INSERT = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES "  # noqa: S608 - constants only


def _dt(value: datetime | None) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def aware(value: Any) -> datetime | None:
    """A datetime column value from a raw cursor (SQLite: naive UTC or text) as an aware datetime."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def result_json(result: Any) -> str:
    """How an outcome is stored in ``result`` ('' for None)."""
    if result is None:
        return ""
    return json.dumps(result, separators=(",", ":"), ensure_ascii=False, default=str)


# ================================================================================== inbound


def _inbound_params(row: InboundRow, message_id: str, now: Any) -> tuple[Any, ...]:
    return (Direction.IN.value, row.topic, message_id, "", row.entity_key, None, row.payload, now, now, now)


@functools.cache
def _inbound_sql(mark: str) -> tuple[str, str]:
    insert = f"{_INSERT}{row_sql(mark)} ON CONFLICT (direction, message_id) DO NOTHING"
    select = f"SELECT payload FROM {TABLE} WHERE direction = '{Direction.IN.value}' AND message_id = {mark}"  # noqa: S608
    return insert, select


def insert_inbound(cur: Any, rows: Sequence[InboundRow], now: Any, *, mark: str = "%s") -> None:
    """Insert inbound ``rows`` once each (the caller commits): a stored id with the same body is a
    re-delivery, with another body a new message under :func:`variant_id`.

    ``cur`` is any DB-API cursor whose parameter marker is ``mark``; ``now`` is already adapted to
    the database (the caller's connection decides the format).
    """
    insert, select = _inbound_sql(mark)
    cur.executemany(insert, [_inbound_params(r, r.message_id, now) for r in rows])
    if cur.rowcount == len(rows):
        return
    for r in rows:  # some ids existed: keep bodies that differ from the stored one
        cur.execute(select, (r.message_id,))
        found = cur.fetchone()
        if found is not None and found[0] != r.payload:
            cur.execute(insert, _inbound_params(r, variant_id(r.message_id, r.payload), now))


def store_inbound(row: InboundRow) -> LM:
    """Store one inbound row through Django's connection; returns the stored row (the existing one
    on re-delivery, the variant for a different body). Raises ``DatabaseError``."""
    with transaction.atomic():
        with connection.cursor() as cur:
            insert_inbound(cur, [row], _dt(timezone.now()))
        wake.notify_in_transaction(wake.IN)
        stored = LM.objects.get(direction=Direction.IN, message_id=row.message_id)
        if stored.payload == row.payload:
            return stored
        return LM.objects.get(direction=Direction.IN, message_id=variant_id(row.message_id, row.payload))


def record_answer(msg: LM, *, result: Any = None, error: str | None = None) -> None:
    """Record a synchronously answered query ``msg`` (locked by the caller, ``attempts`` counted):
    ``complete`` with its result, or ``error`` with ``error``."""
    now = timezone.now()
    msg.updated_at = now
    if error is None:
        msg.status, msg.result, msg.processed_at, msg.last_error = Status.COMPLETE, result_json(result), now, ""
        msg.save(update_fields=["status", "result", "processed_at", "updated_at", "attempts", "last_error"])
        return
    msg.status, msg.last_error = Status.ERROR, error[:2000]
    msg.save(update_fields=["status", "last_error", "updated_at", "attempts"])


# ---------------------------------------------------------------- raw stores (group commit)


class RawStore(Protocol):
    def write(self, rows: Sequence[InboundRow]) -> None: ...
    def close(self) -> None: ...


class _SqlStore:
    """Inbound rows through a connection of its own (the ingest writer thread); subclasses
    provide the connection, parameter marker and timestamp format of their database."""

    placeholder = "?"
    vendor = "sqlite"

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.conn: Any = None

    def connect(self) -> Any:
        raise NotImplementedError

    def now(self) -> Any:
        raise NotImplementedError

    def begin(self, cur: Any) -> None:
        pass

    def write(self, rows: Sequence[InboundRow]) -> None:
        if self.conn is None:
            self.conn = self.connect()
        cur = self.conn.cursor()
        try:
            self.begin(cur)
            insert_inbound(cur, rows, self.now(), mark=self.placeholder)
            wake.raw_before_commit(cur, wake.IN, self.vendor)
            self.conn.commit()
        except BaseException:
            self._discard()
            raise
        finally:
            if self.conn is not None:
                cur.close()
        wake.raw_after_commit(wake.IN, self.vendor)

    def _discard(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.rollback()
                conn.close()
            except Exception:  # noqa: BLE001,S110 - the connection is being thrown away anyway
                pass

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()


class SqliteStore(_SqlStore):
    placeholder = "?"

    def connect(self) -> Any:
        conn = sqlite3.connect(self.settings["NAME"], timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def now(self) -> Any:
        # Django's SQLite format for aware datetimes: naive UTC, str() (``YYYY-MM-DD HH:MM:SS.ffffff``)
        return str(datetime.now(UTC).replace(tzinfo=None))

    def begin(self, cur: Any) -> None:
        cur.execute("BEGIN IMMEDIATE")


class PostgresStore(_SqlStore):
    placeholder = "%s"
    vendor = "postgresql"

    def connect(self) -> Any:
        import psycopg

        s = self.settings
        options = {k: v for k, v in (s.get("OPTIONS") or {}).items()
                   if k not in ("isolation_level", "pool", "server_side_binding", "assume_role")}
        kwargs: dict[str, Any] = {"dbname": s["NAME"], **options}
        for key, name in (("USER", "user"), ("PASSWORD", "password"), ("HOST", "host"), ("PORT", "port")):
            if s.get(key):
                kwargs[name] = s[key]
        return psycopg.connect(**kwargs)

    def now(self) -> Any:
        return datetime.now(UTC)


def store_for(settings: dict[str, Any]) -> RawStore:
    """The raw inbound store for a Django database settings dict."""
    engine = settings.get("ENGINE", "")
    if engine.endswith("sqlite3"):
        return SqliteStore(settings)
    if engine.endswith("postgresql"):
        return PostgresStore(settings)
    raise ValueError(f"no fast ingest store for database engine {engine!r}")


# ================================================================================= outbound


def insert_outbound_one(method: str, kind: str, message_id: str, *, entity_key: str, dedupe_key: str | None,
                        payload: str) -> LM:
    """Insert one new outbound message (the caller's transaction); returns the row."""
    now = timezone.now()
    row = LM.objects.create(
        direction=Direction.OUT, topic=method, message_id=message_id, kind=kind, entity_key=entity_key,
        dedupe_key=dedupe_key, payload=payload, status=Status.NEW, next_attempt_at=now, created_at=now, updated_at=now,
    )
    wake.notify_in_transaction(wake.OUT)
    return row


def insert_outbound(method: str, kind: str, rows: Sequence[tuple[str, str, str | None, str]]) -> list[int]:
    """Insert ``rows`` (message id, entity key, dedupe key, payload) as new outbound messages.

    One multi-row ``INSERT … RETURNING`` per chunk (under the backend's parameter limit): the
    rows of ``bulk_create`` without the ORM's per-object work (and, on PostgreSQL, without
    Django's ``UNNEST`` of text arrays, whose elements psycopg escapes in Python). Returns the new
    ids in the order of ``rows``.
    """
    if not rows:
        return []
    at = _dt(timezone.now())
    limit = connection.features.max_query_params or 65_535
    size = max(1, min(_IN_CHUNK, limit // len(PARAM_COLUMNS)))
    one = row_sql("%s")
    by_message: dict[str, int] = {}
    out = Direction.OUT.value
    with connection.cursor() as cur:
        for start in range(0, len(rows), size):
            chunk = rows[start:start + size]
            params: list[Any] = []
            for message_id, entity_key, dedupe_key, payload in chunk:
                params += (out, method, message_id, kind, entity_key, dedupe_key, payload, at, at, at)
            cur.execute(f"{_INSERT}{', '.join([one] * len(chunk))} RETURNING id, message_id", params)
            by_message.update((message_id, pk) for pk, message_id in cur.fetchall())
    wake.notify_in_transaction(wake.OUT)
    return [by_message[message_id] for message_id, _, _, _ in rows]


def waiting_by_dedupe_key(keys: Sequence[str]) -> dict[str, int]:
    """``{dedupe key: id}`` of the newest outbound message per key that still waits (``new``), the
    rows locked until the caller's transaction ends (the outbox then replaces their payload)."""
    waiting: dict[str, int] = {}
    for start in range(0, len(keys), _IN_CHUNK):
        rows = (
            LM.objects.select_for_update()
            .filter(direction=Direction.OUT, dedupe_key__in=keys[start:start + _IN_CHUNK], status=Status.NEW)
            .order_by("id")
            .values_list("dedupe_key", "id")
        )
        for key, pk in rows:
            waiting[str(key)] = pk  # the newest waiting row per key wins
    return waiting


def replace_waiting_payloads(payloads: Mapping[int, str]) -> None:
    """Give waiting outbound messages ``{id: payload}`` their newest params."""
    if not payloads:
        return
    now = timezone.now()
    replaced = [LM(pk=pk, payload=payload, updated_at=now) for pk, payload in payloads.items()]
    LM.objects.bulk_update(replaced, ["payload", "updated_at"], batch_size=_IN_CHUNK)


# ================================================================================== claiming


@dataclass(frozen=True)
class Claimed:
    """A row taken by :func:`claim`: its values, the attempts before this one, and the claim token."""

    id: int
    direction: str
    topic: str
    message_id: str
    kind: str
    entity_key: str
    payload: str
    attempts: int
    created_at: datetime
    token: datetime  # the locked_until value written by the claim


class ClaimLost(Exception):
    """A lease was taken over by another worker: roll back, do not finish the row."""


_WINDOW_SQL = f"""
SELECT id, entity_key, status, next_attempt_at, locked_until FROM {TABLE}
WHERE direction = %s AND status IN ('new', 'retry', 'processing') AND id > %s
ORDER BY id LIMIT %s
"""  # noqa: S608 - constants only (index mcom_lmq_open)
_ERRORS_SQL = f"""
SELECT entity_key, MIN(id) FROM {TABLE} WHERE direction = %s AND status = 'error' AND entity_key IN ({{keys}})
GROUP BY entity_key
"""  # noqa: S608 (index mcom_lmq_error)
_CLAIM_IDS_SQL = f"""
UPDATE {TABLE} SET status = 'processing', locked_until = %s, updated_at = %s, attempts = attempts + %s
WHERE direction = %s AND id IN ({{ids}})
  AND ((status IN ('new', 'retry') AND next_attempt_at <= %s)
       OR (status = 'processing' AND (locked_until IS NULL OR locked_until < %s)))
  AND NOT EXISTS (SELECT 1 FROM {TABLE} e WHERE e.direction = {TABLE}.direction AND e.entity_key = {TABLE}.entity_key
                  AND e.id < {TABLE}.id AND e.status IN ('new', 'retry', 'processing', 'error'))
RETURNING {', '.join(CLAIM_FIELDS)}
"""  # noqa: S608 - constants only: due rows of ``ids`` that are the first open row of their entity
_CLAIMED_SQL = (f"SELECT {', '.join(CLAIM_FIELDS)} FROM {TABLE} WHERE id IN ({{ids}}) "  # noqa: S608
                "AND status = 'processing' AND locked_until = %s ORDER BY id")
if set(PENDING) != {"new", "retry", "processing"} or set(OPEN) != {*PENDING, "error"}:  # pragma: no cover
    raise RuntimeError("statuses changed; update the claim SQL of mcom.service_bus.log")


def _marks(n: int) -> str:
    return ", ".join(["%s"] * n)


def _is_due(status: str, next_at: Any, locked_until: Any, now: datetime) -> bool:
    if status in (Status.NEW, Status.RETRY):
        nxt = aware(next_at)
        return nxt is not None and nxt <= now
    if status == Status.PROCESSING:
        lu = aware(locked_until)
        return lu is None or lu < now
    return False


def _select(cur: Any, direction: str, limit: int, now: datetime) -> dict[int, tuple[str, str]]:
    """Pick eligible rows: ``{id: (entity_key, status)}`` in id order.

    Scans open rows in id order (windows of :data:`WINDOW`, partial index ``mcom_lmq_open``, so
    a claim costs O(rows scanned), never a per-row anti-join): the first open row of an entity is
    eligible when due and no ``error`` row of its entity precedes it; the following rows of the
    entity are eligible while each is due (a busy entity is batched in one claim). An entity
    whose run breaks is blocked for the rest of the claim. Other entities are not affected.
    """
    chosen: dict[int, tuple[str, str]] = {}
    running: set[str] = set()
    blocked: set[str] = set()
    errors: dict[str, int] = {}
    last_id, scanned = 0, 0
    while len(chosen) < limit and scanned < SCAN_BUDGET:
        cur.execute(_WINDOW_SQL, [direction, last_id, WINDOW])
        rows = cur.fetchall()
        if not rows:
            break
        scanned += len(rows)
        last_id = rows[-1][0]
        fresh = list({r[1] for r in rows} - running - blocked)
        _fetch_errors(cur, direction, fresh, errors)
        held = [k for k in fresh if k in errors]
        if held and _supersede_in(cur, direction, held):  # parked states with a newer one: no longer hold
            for k in held:
                del errors[k]
            _fetch_errors(cur, direction, held, errors)
        for row_id, key, status, next_at, locked_until in rows:
            if key in blocked:
                continue
            if (key in errors and errors[key] < row_id) or len(chosen) >= limit:
                blocked.add(key)
                continue
            if not _is_due(status, next_at, locked_until, now):
                blocked.add(key)
                continue
            chosen[row_id] = (key, status)
            running.add(key)
    return chosen


def _fetch_errors(cur: Any, direction: str, keys: Sequence[str], errors: dict[str, int]) -> None:
    """Add ``{entity key: lowest error id}`` of ``keys`` to ``errors`` (index ``mcom_lmq_error``)."""
    for i in range(0, len(keys), _IN_CHUNK):
        part = keys[i:i + _IN_CHUNK]
        cur.execute(_ERRORS_SQL.format(keys=_marks(len(part))), [direction, *part])
        errors.update({k: int(v) for k, v in cur.fetchall()})


def _claim_ids(cur: Any, direction: str, ids: Sequence[int], token: datetime, now: datetime, counted: int) -> list[Any]:
    """Claim the due rows of ``ids`` that are the first open row of their entity: one conditional
    ``UPDATE … RETURNING`` per chunk (a page of the catalog export costs one statement)."""
    rows: list[Any] = []
    for start in range(0, len(ids), _IN_CHUNK):
        part = list(ids[start:start + _IN_CHUNK])
        cur.execute(_CLAIM_IDS_SQL.format(ids=_marks(len(part))),
                    [_dt(token), _dt(now), counted, direction, *part, _dt(now), _dt(now)])
        rows += cur.fetchall()
    return sorted(rows, key=lambda r: r[0])


def _claim_due(cur: Any, direction: str, limit: int, token: datetime, now: datetime, counted: int,
               pg: bool) -> list[Any]:
    """Claim up to ``limit`` eligible rows of all due ones (:func:`_select`)."""
    chosen = _select(cur, direction, limit, now)
    if not chosen:
        return []
    if pg:
        cur.execute(f"SELECT id FROM {TABLE} WHERE id IN ({_marks(len(chosen))}) ORDER BY id FOR UPDATE SKIP LOCKED",  # noqa: S608
                    list(chosen))
        locked = {r[0] for r in cur.fetchall()}
        gone: set[str] = set()
        for row_id in sorted(chosen):  # a row someone else holds keeps its entity's later rows back
            key = chosen[row_id][0]
            if row_id not in locked or key in gone:
                gone.add(key)
                del chosen[row_id]
        if not chosen:
            return []
    claimed_ids = sorted(chosen)
    marks = _marks(len(claimed_ids))
    cur.execute(
        f"UPDATE {TABLE} SET status = 'processing', locked_until = %s, updated_at = %s, attempts = attempts + %s "  # noqa: S608
        f"WHERE id IN ({marks}) AND status IN ('new', 'retry', 'processing')",
        [_dt(token), _dt(now), counted, *claimed_ids],
    )
    cur.execute(_CLAIMED_SQL.format(ids=marks), [*claimed_ids, _dt(token)])
    return list(cur.fetchall())


def claim(direction: str, limit: int, *, lease_seconds: float, ids: Sequence[int] | None = None) -> list[Claimed]:
    """Atomically claim up to ``limit`` eligible rows of ``direction`` (all due rows, or only of
    ``ids`` — each then must be the first open row of its entity) in id order, leased for
    ``lease_seconds``. Outbound: the claim counts the attempt (a send may happen any time after
    it; :func:`release` gives it back); inbound counts when the outcome is recorded."""
    pg = connection.vendor == "postgresql"
    counted = 1 if direction == Direction.OUT else 0
    with transaction.atomic(), connection.cursor() as cur:
        if pg:  # claims of one direction are serialized (short); rows are locked with SKIP LOCKED
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_CLAIM_LOCK[direction]])
        now = timezone.now()
        token = now + timedelta(seconds=lease_seconds)
        if ids is not None:
            rows = _claim_ids(cur, direction, ids[:limit], token, now, counted)
        else:
            rows = _claim_due(cur, direction, limit, token, now, counted, pg)
    return [
        Claimed(
            id=r[0], direction=r[1], topic=r[2], message_id=r[3], kind=r[4], entity_key=r[5], payload=r[6],
            attempts=r[7] - counted, created_at=aware(r[8]) or now, token=token,
        )
        for r in rows
    ]


# ================================================================================= recording


def _finish(c_id: int, token: datetime, **fields: Any) -> bool:
    """Conditional update of a claimed row (still ours: processing with our token); True if done."""
    cols = ", ".join(f"{k} = %s" for k in fields)
    values = [_dt(v) if isinstance(v, datetime) else v for v in fields.values()]
    with connection.cursor() as cur:
        cur.execute(
            f"UPDATE {TABLE} SET {cols} WHERE id = %s AND status = 'processing' AND locked_until = %s",  # noqa: S608
            [*values, c_id, _dt(token)],
        )
        return bool(cur.rowcount)


def complete(c: Claimed, *, attempts: int, result: Any) -> bool:
    """Mark claimed ``c`` ``complete`` with ``result`` (in the caller's transaction, e.g. with the
    handler's writes); False when the claim was lost."""
    done = timezone.now()
    return _finish(c.id, c.token, status=Status.COMPLETE.value, attempts=attempts, locked_until=None, updated_at=done,
                   processed_at=done, last_error="", result=result_json(result))


def ignore_claimed(c: Claimed, *, attempts: int, reason: str) -> bool:
    """Finish claimed ``c`` as ``ignored`` with ``reason`` without running it (a replay of a message
    applied before); False when the claim was lost."""
    done = timezone.now()
    return _finish(c.id, c.token, status=Status.IGNORED.value, attempts=attempts, locked_until=None,
                   updated_at=done, processed_at=done, last_error=reason[:MAX_ERROR])


_COMPLETE_SQL = (
    f"UPDATE {TABLE} SET status = '{Status.COMPLETE.value}', processed_at = %s, last_error = '', result = %s, "  # noqa: S608
    "locked_until = NULL, updated_at = %s WHERE id = %s AND status = 'processing' AND locked_until = %s"
)


_COMPLETE_IN_SQL = (
    f"UPDATE {TABLE} SET status = '{Status.COMPLETE.value}', processed_at = %s, last_error = '', result = %s, "  # noqa: S608
    "locked_until = NULL, updated_at = %s WHERE id IN ({ids}) AND status = 'processing' AND locked_until = %s"
)


#: PostgreSQL: rows with their own results in one statement (an ``executemany`` is a pipeline of one
#: statement per row there, several waits on the server per group of sends)
_COMPLETE_VALUES_SQL = (
    f"UPDATE {TABLE} AS t SET status = '{Status.COMPLETE.value}', processed_at = %s, last_error = '', "  # noqa: S608
    "result = v.res, locked_until = NULL, updated_at = %s FROM (VALUES {rows}) AS v(id, res) "
    "WHERE t.id = v.id AND t.status = 'processing' AND t.locked_until = %s"
)


def complete_many(done: Iterable[tuple[int, Any]], token: datetime) -> None:
    """Mark claimed rows ``(id, result)`` of one claim ``complete`` (the caller's transaction): one
    ``UPDATE … WHERE id IN`` per distinct result when results repeat (a page of products), else one
    ``UPDATE … FROM (VALUES …)`` (PostgreSQL) or one ``executemany`` (SQLite). Raises
    :class:`ClaimLost` when any of them is no longer ours."""
    now = _dt(timezone.now())
    tok = _dt(token)
    by_result: dict[str, list[int]] = {}
    for log_id, result in done:
        by_result.setdefault(result_json(result), []).append(log_id)
    total = sum(len(v) for v in by_result.values())
    changed = 0
    with connection.cursor() as cur:
        if len(by_result) * 4 <= total:  # results repeat: one UPDATE … WHERE id IN per result
            for res, ids in by_result.items():
                for start in range(0, len(ids), _IN_CHUNK):
                    part = ids[start:start + _IN_CHUNK]
                    cur.execute(_COMPLETE_IN_SQL.format(ids=_marks(len(part))), [now, res, now, *part, tok])
                    changed += cur.rowcount
        elif connection.vendor == "postgresql":
            pairs = [(log_id, res) for res, ids in by_result.items() for log_id in ids]
            for start in range(0, len(pairs), _IN_CHUNK):
                chunk = pairs[start:start + _IN_CHUNK]
                rows = ", ".join(["(%s::bigint, %s::text)"] * len(chunk))
                cur.execute(_COMPLETE_VALUES_SQL.format(rows=rows),
                            [now, now, *(v for pair in chunk for v in pair), tok])
                changed += cur.rowcount
        else:
            cur.executemany(_COMPLETE_SQL, [(now, res, now, log_id, tok) for res, ids in by_result.items() for log_id in ids])
            changed = cur.rowcount
    if changed != total:
        raise ClaimLost


def park_delivered(errors: Mapping[int, str]) -> None:
    """Delivered rows whose ``on_sent`` hook failed: ``error`` with the reason (never sent again)."""
    with connection.cursor() as cur:
        cur.executemany(f"UPDATE {TABLE} SET status = '{Status.ERROR.value}', last_error = %s WHERE id = %s",  # noqa: S608
                        [(error[:MAX_ERROR], log_id) for log_id, error in errors.items()])


def fail(c: Claimed, decision: Decision, *, attempts: int | None = None) -> bool:
    """Record a failed attempt of claimed ``c``: ``retry`` at ``decision.retry_at``, or ``error``
    (given up), with the reason; False when the claim was lost. ``attempts``: the count to store
    (inbound counts the attempt here, outbound at the claim)."""
    fields: dict[str, Any] = {"status": failed_status(decision), "last_error": decision.reason[:MAX_ERROR],
                              "locked_until": None, "updated_at": timezone.now(),
                              "park_transient": decision.transient and not decision.will_retry}
    if decision.retry_at is not None:
        fields["next_attempt_at"] = decision.retry_at
    if attempts is not None:
        fields["attempts"] = attempts
    if not _finish(c.id, c.token, **fields):
        return False
    if not decision.will_retry and c.direction == Direction.IN.value:
        supersede_states(c.direction, [c.entity_key])  # a newer state of the entity may already be here
    return True


def failed_status(decision: Decision) -> str:
    """The status a failed attempt leaves: ``retry`` or ``error``."""
    return Status.RETRY.value if decision.will_retry else Status.ERROR.value


def release(rows: Sequence[Claimed]) -> None:
    """Give unprocessed claims back (still ours only): due again at once, with the attempt count
    they had before the claim."""
    if not rows:
        return
    now = _dt(timezone.now())
    with transaction.atomic(), connection.cursor() as cur:
        cur.executemany(
            f"UPDATE {TABLE} SET status = %s, attempts = %s, locked_until = NULL, updated_at = %s "  # noqa: S608
            "WHERE id = %s AND status = 'processing' AND locked_until = %s",
            [(Status.RETRY.value if c.attempts else Status.NEW.value, c.attempts, now, c.id, _dt(c.token)) for c in rows],
        )


def renew(ids: Sequence[int], token: datetime, lease_seconds: float) -> tuple[datetime, set[int]]:
    """Extend the lease of claimed rows ``ids`` of one claim: ``(new token, ids still ours)``."""
    now = timezone.now()
    renewed = now + timedelta(seconds=lease_seconds)
    marks = _marks(len(ids))
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            f"UPDATE {TABLE} SET locked_until = %s, updated_at = %s "  # noqa: S608
            f"WHERE id IN ({marks}) AND status = 'processing' AND locked_until = %s",
            [_dt(renewed), _dt(now), *ids, _dt(token)],
        )
        if cur.rowcount == len(ids):
            return renewed, set(ids)
        cur.execute(f"SELECT id FROM {TABLE} WHERE id IN ({marks}) AND status = 'processing' AND locked_until = %s",  # noqa: S608
                    [*ids, _dt(renewed)])
        return renewed, {r[0] for r in cur.fetchall()}


# ============================================================================ other changes


def supersede(direction: str, topic: str, entity_keys: Sequence[str]) -> int:
    """Messages of ``topic`` parked as ``error`` for ``entity_keys`` become ``ignored``: a newer
    message replaces them (they would otherwise hold the new one back). Returns how many."""
    if not entity_keys:
        return 0
    return LM.objects.filter(direction=direction, topic=topic, entity_key__in=list(entity_keys),
                             status=Status.ERROR).update(status=Status.IGNORED, updated_at=timezone.now())


# ------------------------------------------------------------- superseded states (inbound)

_LATER_SQL = f"""
SELECT e.id, e.entity_key, e.topic, e.last_error,
       (SELECT MIN(l.id) FROM {TABLE} l WHERE l.entity_key = e.entity_key AND l.direction = e.direction
                                         AND l.topic = e.topic AND l.id > e.id)
FROM {TABLE} e WHERE e.direction = %s AND e.status = 'error' AND e.entity_key IN ({{keys}}) AND e.topic IN ({{topics}})
"""  # noqa: S608 - constants only (indexes mcom_lmq_error, mcom_lmq_entity)
_SUPERSEDED_SQL = (f"UPDATE {TABLE} SET status = '{Status.IGNORED.value}', last_error = %s, locked_until = NULL, "  # noqa: S608
                   "park_transient = %s, updated_at = %s WHERE id = %s AND status = 'error'")


def _supersedable(direction: str) -> tuple[str, ...]:
    from mcom.service_bus import registry  # registered at app-ready; the log imports no module at import time

    return tuple(sorted(registry.supersedable_topics(direction)))


def _supersede_in(cur: Any, direction: str, entity_keys: Sequence[str]) -> int:
    """Parked (``error``) rows of the state-based topics (``registry.inbound(..., supersedable=True)``)
    of ``entity_keys`` that a later row of the same entity and topic exists for become ``ignored``
    with "superseded by #N: <reason>"; each gets an event line. Returns how many."""
    topics = _supersedable(direction)
    if not topics or not entity_keys:
        return 0
    found: list[tuple[int, str, str, str, int]] = []
    for i in range(0, len(entity_keys), _IN_CHUNK):
        part = list(entity_keys[i:i + _IN_CHUNK])
        cur.execute(_LATER_SQL.format(keys=_marks(len(part)), topics=_marks(len(topics))), [direction, *part, *topics])
        found += [(int(r[0]), str(r[1]), str(r[2]), str(r[3] or ""), int(r[4])) for r in cur.fetchall() if r[4] is not None]
    if not found:
        return 0
    now = _dt(timezone.now())
    done = 0
    from mcom.service_bus import events

    for log_id, key, topic, reason, by_id in found:
        cur.execute(_SUPERSEDED_SQL, [f"superseded by #{by_id}: {reason}"[:MAX_ERROR], False, now, log_id])
        if cur.rowcount:
            done += 1
            events.superseded(log_id, by_id, topic, key, reason, direction=direction)
    return done


def supersede_states(direction: str, entity_keys: Sequence[str]) -> int:
    """:func:`_supersede_in` on Django's connection (the caller's transaction, else its own)."""
    with transaction.atomic(), connection.cursor() as cur:
        return _supersede_in(cur, direction, entity_keys)


# ------------------------------------------------------------- transient parks (re-queue)


@dataclass(frozen=True)
class Parked:
    """A message parked on a transient cause: may be re-queued by ``service_bus.requeue_parked``."""

    id: int
    topic: str
    parked_at: datetime


def transient_parks(direction: str, *, requeue_max: int, limit: int,
                    parked_before: datetime | None = None) -> list[Parked]:
    """The oldest ``limit`` rows of ``direction`` parked on a transient cause and re-queued fewer
    than ``requeue_max`` times (``parked_before``: parked before that time only)."""
    qs = LM.objects.filter(direction=direction, status=Status.ERROR, park_transient=True, requeues__lt=requeue_max)
    if parked_before is not None:
        qs = qs.filter(updated_at__lt=parked_before)
    return [Parked(pk, topic, at) for pk, topic, at in qs.order_by("id").values_list("id", "topic", "updated_at")[:limit]]


_LAST_SUCCESS_SQL = f"""
SELECT MAX(processed_at) FROM (SELECT processed_at FROM {TABLE} WHERE direction = 'out' AND status = 'complete'
                               AND id > %s ORDER BY id DESC LIMIT %s) recent
"""  # noqa: S608 - constants only: a bounded primary-key range
SUCCESS_SCAN = 10_000


def last_outbound_success(after_id: int) -> datetime | None:
    """When the OMS last accepted an outbound message of id above ``after_id`` (the newest
    :data:`SUCCESS_SCAN` completed rows looked at), or None."""
    with connection.cursor() as cur:
        cur.execute(_LAST_SUCCESS_SQL, [after_id, SUCCESS_SCAN])
        row = cur.fetchone()
    return aware(row[0]) if row else None


_REQUEUE_SQL = (f"UPDATE {TABLE} SET status = '{Status.RETRY.value}', next_attempt_at = %s, locked_until = NULL, "  # noqa: S608
                "updated_at = %s, park_transient = %s, requeues = requeues + 1 "
                "WHERE id IN ({ids}) AND status = 'error' AND park_transient = %s AND requeues < %s RETURNING topic")


def requeue_parked(ids: Sequence[int], *, requeue_max: int) -> dict[str, int]:
    """Re-queue transient parks ``ids`` (still parked, under ``requeue_max``): due now as ``retry``,
    their reason kept, ``requeues`` counted; one statement per chunk. Returns ``{topic: count}``."""
    by_topic: dict[str, int] = {}
    now = _dt(timezone.now())
    with transaction.atomic(), connection.cursor() as cur:
        for start in range(0, len(ids), _IN_CHUNK):
            part = list(ids[start:start + _IN_CHUNK])
            cur.execute(_REQUEUE_SQL.format(ids=_marks(len(part))), [now, now, False, *part, True, requeue_max])
            for (topic,) in cur.fetchall():
                by_topic[str(topic)] = by_topic.get(str(topic), 0) + 1
    return by_topic


# ---------------------------------------------------------------- operator bulk changes

#: statuses an operator may retry / ignore a message from (a message in flight never is)
RETRYABLE: tuple[str, ...] = (Status.ERROR.value, Status.RETRY.value, Status.IGNORED.value)
IGNORABLE: tuple[str, ...] = (Status.NEW.value, Status.RETRY.value, Status.ERROR.value)


@dataclass(frozen=True)
class BulkOutcome:
    """What a bulk retry/ignore matched, changed (or would change: dry run) and skipped."""

    matched: int
    changed: int

    @property
    def skipped(self) -> int:
        return self.matched - self.changed


def _bulk(selection: MessageFilter, allowed: Sequence[str], dry_run: bool, **fields: Any) -> BulkOutcome:
    ids = list(LM.objects.filter(selection.q()).order_by("id").values_list("id", flat=True))
    changed = 0
    for start in range(0, len(ids), _IN_CHUNK):
        rows = LM.objects.filter(pk__in=ids[start:start + _IN_CHUNK], status__in=list(allowed))
        changed += rows.count() if dry_run else rows.update(**fields)
    return BulkOutcome(len(ids), changed)


def bulk_retry(selection: MessageFilter, *, dry_run: bool = False) -> BulkOutcome:
    """Make the selected messages in a retryable status due now (``retry``); one conditional
    ``UPDATE`` per chunk, so rows claimed meanwhile (``processing``) are skipped."""
    now = timezone.now()
    return _bulk(selection, RETRYABLE, dry_run, status=Status.RETRY, next_attempt_at=now, locked_until=None,
                 updated_at=now, park_transient=False)


def bulk_ignore(selection: MessageFilter, *, dry_run: bool = False) -> BulkOutcome:
    """Mark the selected messages in an ignorable status ``ignored``; like :func:`bulk_retry`."""
    return _bulk(selection, IGNORABLE, dry_run, status=Status.IGNORED, locked_until=None, updated_at=timezone.now(),
                 park_transient=False)


# ---------------------------------------------------------------- one message (operator)


def _get_for_update(log_id: int) -> LM:
    try:
        return LM.objects.select_for_update().get(pk=log_id)
    except LM.DoesNotExist:
        raise LookupError(f"message #{log_id} does not exist") from None


def _in_flight(msg: LM, now: datetime) -> bool:
    return msg.status == Status.PROCESSING and msg.locked_until is not None and msg.locked_until > now


def _operator_change(log_id: int, **fields: Any) -> LM:
    """An operator's change of message ``log_id`` (refused while a worker holds it)."""
    with transaction.atomic():
        msg = _get_for_update(log_id)
        if _in_flight(msg, fields["updated_at"]):
            raise ValueError(f"message #{log_id} is being processed right now")
        for name, value in fields.items():
            setattr(msg, name, value)
        msg.save(update_fields=list(fields))
    return msg


def retry(log_id: int) -> LM:
    """Make message ``log_id`` due now (status ``retry``). Raises ``LookupError``/``ValueError`` (in flight)."""
    now = timezone.now()
    return _operator_change(log_id, status=Status.RETRY, next_attempt_at=now, locked_until=None, updated_at=now,
                            park_transient=False)


def ignore(log_id: int) -> LM:
    """Mark message ``log_id`` ``ignored`` (never processed; releases its entity). Raises like :func:`retry`."""
    return _operator_change(log_id, status=Status.IGNORED, locked_until=None, updated_at=timezone.now(),
                            park_transient=False)
