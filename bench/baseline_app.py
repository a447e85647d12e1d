"""Baseline for bench/ingest.py: the minimal ASGI handler on the same server stack (uvicorn +
httptools + uvloop, same workers): verify the HMAC, parse the id/method, insert one row of the
same format into ``mcom_logged_messages_queue`` with autocommit, answer. No group commit, no
routing, no envelope validation.

Env: ``BENCH_DB`` (sqlite|postgres), ``BENCH_SQLITE_PATH``, ``BENCH_PG_URL``, ``BENCH_SECRET``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

SECRET = os.environ.get("BENCH_SECRET", "").encode()
DB = os.environ.get("BENCH_DB", "sqlite")
COLS = (
    "direction, topic, message_id, kind, entity_key, dedupe_key, payload, status, attempts, next_attempt_at, "
    "locked_until, last_error, result, created_at, updated_at, processed_at"
)
OK = b'{"jsonrpc":"2.0","id":null,"result":{}}'


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
            await conn.execute(
                f"INSERT INTO mcom_logged_messages_queue ({COLS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                values,
            )
        finally:
            self.queue.put_nowait(conn)


class SqliteWriter:
    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1)
        self.conn: sqlite3.Connection | None = None

    def _insert(self, values: tuple[Any, ...]) -> None:
        if self.conn is None:
            self.conn = sqlite3.connect(os.environ["BENCH_SQLITE_PATH"], isolation_level=None, check_same_thread=False, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(
            f"INSERT INTO mcom_logged_messages_queue ({COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", values
        )

    async def insert(self, values: tuple[Any, ...]) -> None:
        await asyncio.get_running_loop().run_in_executor(self.pool, self._insert, values)


store: Any = PgPool() if DB == "postgres" else SqliteWriter()


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
        await store.insert(("in", doc["method"], str(doc["id"]), "", "global", None, text, "new", 0, now, None, "", "", now, now, None))
        status, out = 200, OK
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})
