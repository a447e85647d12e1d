"""Baselines for bench/ingest.py: minimal ASGI handlers on the same server stack (uvicorn +
httptools + uvloop, same workers): verify the HMAC, parse the id/method, insert one row of the
same format into ``mcom_logged_messages_queue`` (``ON CONFLICT (direction, message_id) DO
NOTHING``, like mcom), answer after the commit. No routing, envelope validation, body limits.

``BENCH_BASELINE=group`` (default): group commit — one writer thread per process with its own
connection takes every row queued by concurrent requests, inserts them with one ``executemany``
and commits once; each request is answered after the commit holding its row (mcom's design,
without mcom). ``BENCH_BASELINE=autocommit``: one commit per request (PostgreSQL: a pool of 8
async connections; SQLite: one writer thread).

Env: ``BENCH_DB`` (sqlite|postgres), ``BENCH_SQLITE_PATH``, ``BENCH_PG_URL``, ``BENCH_SECRET``,
``BENCH_BASELINE``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sqlite3
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

SECRET = os.environ.get("BENCH_SECRET", "").encode()
DB = os.environ.get("BENCH_DB", "sqlite")
MODE = os.environ.get("BENCH_BASELINE", "group")
COLS = (
    "direction, topic, message_id, kind, entity_key, dedupe_key, payload, status, attempts, next_attempt_at, "
    "locked_until, last_error, result, created_at, updated_at, processed_at"
)
OK = b'{"jsonrpc":"2.0","id":null,"result":{}}'
MARK = "%s" if DB == "postgres" else "?"
# the log's newer columns (transient park flag, re-queue count) get their defaults as literals
INSERT = (f"INSERT INTO mcom_logged_messages_queue ({COLS}, park_transient, requeues) "
          f"VALUES ({', '.join([MARK] * 16)}, FALSE, 0) "
          "ON CONFLICT (direction, message_id) DO NOTHING")


def _connect_sqlite() -> sqlite3.Connection:
    conn = sqlite3.connect(os.environ["BENCH_SQLITE_PATH"], isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class PgPool:
    def __init__(self, size: int = 8) -> None:
        self.size = size
        self.queue: asyncio.Queue[Any] | None = None

    async def insert(self, values: tuple[Any, ...]) -> None:
        import psycopg

        if self.queue is None:
            self.queue = asyncio.Queue()
            for _ in range(self.size):
                self.queue.put_nowait(await psycopg.AsyncConnection.connect(os.environ["BENCH_PG_URL"], autocommit=True))
        conn = await self.queue.get()
        try:
            await conn.execute(INSERT, values)
        finally:
            self.queue.put_nowait(conn)


class SqliteWriter:
    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1)
        self.conn: sqlite3.Connection | None = None

    def _insert(self, values: tuple[Any, ...]) -> None:
        if self.conn is None:
            self.conn = _connect_sqlite()
        self.conn.execute(INSERT, values)

    async def insert(self, values: tuple[Any, ...]) -> None:
        await asyncio.get_running_loop().run_in_executor(self.pool, self._insert, values)


class GroupWriter:
    """One thread: take every queued row, one executemany, one commit, wake the waiting requests."""

    def __init__(self) -> None:
        self.items: deque[tuple[tuple[Any, ...], asyncio.Future[None], asyncio.AbstractEventLoop]] = deque()
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None

    def _run(self) -> None:
        if DB == "postgres":
            import psycopg

            conn: Any = psycopg.connect(os.environ["BENCH_PG_URL"])
        else:
            conn = _connect_sqlite()
        while True:
            with self.cond:
                while not self.items:
                    self.cond.wait()
                batch = [self.items.popleft() for _ in range(min(len(self.items), 512))]
            cur = conn.cursor()
            if DB != "postgres":
                cur.execute("BEGIN IMMEDIATE")
            cur.executemany(INSERT, [values for values, _, _ in batch])
            conn.commit()
            cur.close()
            loop = batch[0][2]
            loop.call_soon_threadsafe(_wake, [fut for _, fut, _ in batch])

    async def insert(self, values: tuple[Any, ...]) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self.cond:
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, daemon=True)
                self.thread.start()
            self.items.append((values, fut, loop))
            self.cond.notify()
        await fut


def _wake(futs: list[asyncio.Future[None]]) -> None:
    for fut in futs:
        if not fut.done():
            fut.set_result(None)


store: Any = GroupWriter() if MODE == "group" else PgPool() if DB == "postgres" else SqliteWriter()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            await send({"type": msg["type"] + ".complete"})
            if msg["type"] == "lifespan.shutdown":
                return
    chunks = []
    while True:
        msg = await receive()
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    body = b"".join(chunks)
    sig = dict(scope["headers"]).get(b"x-signature", b"")
    expected = b"sha1=" + hmac.new(SECRET, body, hashlib.sha1).hexdigest().encode()
    if not hmac.compare_digest(expected, sig):
        status, out = 401, b'{"error":"signature"}'
    else:
        doc = json.loads(body)
        now: Any = datetime.now(UTC)
        if DB != "postgres":
            now = str(now.replace(tzinfo=None))
        text = body.decode()
        key = f"order:{doc['params']['order']['id']}"  # the bench route's entity key
        await store.insert(("in", doc["method"], str(doc["id"]), "", key, None, text, "new", 0, now, None, "", "", now, now, None))
        status, out = 200, OK
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})
