"""Instant wake-up of the worker's lanes: new work wakes the lane of its direction at once.

Inserters call :func:`notify_in_transaction` (ORM paths, Django's connection) or
:func:`raw_before_commit` / :func:`raw_after_commit` (the group-commit stores of
:mod:`mcom.service_bus.log`, their own connection); a running ``mcom worker`` waits on
:class:`Waiter` events that these set. The poll (``[worker] poll_seconds``) stays as the safety net.

- PostgreSQL: ``NOTIFY mcom_lmq, 'in'|'out'`` in the inserting transaction (delivered on commit,
  dropped on rollback; duplicates within one transaction are collapsed by the server). A
  :class:`Listener` thread with its own psycopg connection ``LISTEN``\\s and sets the events, so k
  workers on k hosts over one database are all woken (each claims with ``SKIP LOCKED``).
- SQLite (one host): after commit, the events of this process are set directly and one byte is
  sent to every worker's unix datagram socket in ``var/wake/`` (non-blocking, errors ignored;
  a socket nobody listens on any more is removed). A worker binds ``var/wake/<pid>`` and a
  :class:`Listener` thread reads it.

Costs on the ingest hot path: one ``NOTIFY`` statement per group commit (PostgreSQL); one
``sendto`` per worker per commit plus a directory listing at most every
:data:`PEERS_TTL_SECONDS` (SQLite).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("mcom.service_bus.wake")

CHANNEL = "mcom_lmq"
IN, OUT = "in", "out"
_BYTE = {IN: b"i", OUT: b"o"}
_BY_BYTE = {b"i": IN, b"o": OUT}
PEERS_TTL_SECONDS = 1.0
_SUN_PATH_MAX = 107


# ------------------------------------------------------------------------- waiters (this process)


class Waiter:
    """The events of one direction's lanes in this process, and how often the wake-up path set them."""

    def __init__(self) -> None:
        self.events: list[threading.Event] = []
        self.woken = 0  # set by a notification (NOTIFY, datagram or an insert of this process)

    def wake(self) -> None:
        self.woken += 1
        for ev in list(self.events):
            ev.set()


_waiters: dict[str, Waiter] = {IN: Waiter(), OUT: Waiter()}


def waiter(direction: str) -> Waiter:
    return _waiters[direction]


def subscribe(direction: str) -> threading.Event:
    """An event set whenever work of ``direction`` is added (remove it with :func:`unsubscribe`)."""
    ev = threading.Event()
    _waiters[direction].events.append(ev)
    return ev


def unsubscribe(direction: str, ev: threading.Event) -> None:
    with contextlib.suppress(ValueError):
        _waiters[direction].events.remove(ev)


def _local(direction: str) -> None:
    w = _waiters.get(direction)
    if w is not None and w.events:
        w.wake()


# ------------------------------------------------------------------------------ SQLite peers


def wake_dir() -> Path:
    from mcom import instance

    return instance.var_dir() / "wake"


class _Peers:
    """The datagram sockets of the workers of this instance (cached for :data:`PEERS_TTL_SECONDS`)."""

    lock = threading.Lock()
    paths: list[str] = []
    read_at = 0.0
    sock: socket.socket | None = None
    own: str = ""


def _peer_paths() -> list[str]:
    now = time.monotonic()
    if now - _Peers.read_at < PEERS_TTL_SECONDS:
        return _Peers.paths
    d = wake_dir()
    try:
        names = os.listdir(d)
    except OSError:
        names = []
    _Peers.paths = [str(d / n) for n in names if n.isdigit()]
    _Peers.read_at = now
    return _Peers.paths


def forget_peers() -> None:
    """Read ``var/wake`` again at the next wake-up (a worker started within the last second)."""
    _Peers.read_at = 0.0


def _send_datagrams(direction: str) -> None:
    paths = _peer_paths()
    if not paths:
        return
    with _Peers.lock:
        if _Peers.sock is None:
            _Peers.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            _Peers.sock.setblocking(False)
        sock = _Peers.sock
        for path in paths:
            if path == _Peers.own:
                continue
            try:
                sock.sendto(_BYTE[direction], path)
            except (ConnectionRefusedError, FileNotFoundError):  # its worker is gone
                with contextlib.suppress(OSError):
                    os.unlink(path)
                _Peers.read_at = 0.0
            except OSError:  # full buffer (it is awake anyway), path too long…
                pass


def raw_after_commit(direction: str, vendor: str) -> None:
    """After an insert committed on a connection of its own (a raw store): wake the lanes
    (SQLite: this process and the other workers of the instance; PostgreSQL's NOTIFY did it)."""
    if vendor == "postgresql":
        return
    _local(direction)
    try:
        _send_datagrams(direction)
    except Exception:  # noqa: BLE001 - a wake-up is an optimisation; the poll picks the work up
        log.debug("wake-up datagram not sent", exc_info=True)


def raw_before_commit(cur: Any, direction: str, vendor: str) -> None:
    """Inside a raw store's insert transaction (PostgreSQL: ``NOTIFY`` with the commit)."""
    if vendor == "postgresql":
        cur.execute(f"NOTIFY {CHANNEL}, '{direction}'")


def _after_commit_in() -> None:
    raw_after_commit(IN, "sqlite")


def _after_commit_out() -> None:
    raw_after_commit(OUT, "sqlite")


_AFTER = {IN: _after_commit_in, OUT: _after_commit_out}


def notify_in_transaction(direction: str) -> None:
    """An ORM insert of ``direction`` in Django's current transaction: wake the lanes when it commits."""
    from django.db import connection, transaction

    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(f"NOTIFY {CHANNEL}, '{direction}'")
        return
    fn = _AFTER[direction]
    if connection.in_atomic_block:
        here = set(connection.savepoint_ids)
        if any(entry[1] is fn and set(entry[0]) <= here for entry in connection.run_on_commit):
            return  # one wake-up per transaction (one registered where a rollback of ours cannot drop it)
    transaction.on_commit(fn)


# ------------------------------------------------------------------------------- listener


class Listener:
    """A thread that sets the events of this process's lanes when another process adds work:
    PostgreSQL ``LISTEN`` on its own connection (reconnects with backoff), SQLite a unix datagram
    socket ``var/wake/<pid>``."""

    def __init__(self, settings: dict[str, Any], *, on_error: Callable[[BaseException], None] | None = None) -> None:
        self.settings = settings
        self.vendor = "postgresql" if str(settings.get("ENGINE", "")).endswith("postgresql") else "sqlite"
        self._stop = threading.Event()
        self.ready = threading.Event()
        self.on_error = on_error
        self._sock: socket.socket | None = None
        self._path = ""
        self._thread = threading.Thread(target=self._run, name="mcom-wake-listener", daemon=True)

    def start(self) -> Listener:
        if self.vendor == "sqlite":
            self._bind()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
        if self._path:
            with contextlib.suppress(OSError):
                os.unlink(self._path)
            _Peers.own = ""

    # SQLite ---------------------------------------------------------------------------------
    def _bind(self) -> None:
        d = wake_dir()
        d.mkdir(parents=True, exist_ok=True)
        path = str(d / str(os.getpid()))
        if len(path.encode()) > _SUN_PATH_MAX:
            log.warning("wake-up socket path too long (%d bytes): lanes wake on the poll only", len(path))
            return
        with contextlib.suppress(OSError):
            os.unlink(path)  # a stale socket of a dead process with our pid
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(0.5)
        self._sock, self._path = sock, path
        _Peers.own = path
        _Peers.read_at = 0.0

    def _run_socket(self) -> None:
        self.ready.set()
        sock = self._sock
        if sock is None:
            return
        while not self._stop.is_set():
            try:
                data = sock.recv(64)
            except TimeoutError:
                continue
            except OSError:
                return
            for b in {data[i:i + 1] for i in range(len(data))}:
                direction = _BY_BYTE.get(b)
                if direction is not None:
                    _local(direction)

    # PostgreSQL -----------------------------------------------------------------------------
    def _connect(self) -> Any:
        from mcom.service_bus.log import PostgresStore

        conn = PostgresStore(self.settings).connect()
        conn.autocommit = True
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def _run_pg(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            conn = None
            try:
                conn = self._connect()
                self.ready.set()
                delay = 1.0
                for _, direction in ((n.channel, n.payload) for n in self._notifies(conn)):
                    _local(direction)
            except Exception as e:  # noqa: BLE001 - reconnect; the lanes still poll meanwhile
                if self.on_error is not None:
                    self.on_error(e)
                log.info("wake-up listener: %s; reconnecting in %.0f s", type(e).__name__, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()

    def _notifies(self, conn: Any) -> Any:
        while not self._stop.is_set():
            yield from conn.notifies(timeout=0.5)

    def _run(self) -> None:
        if self.vendor == "postgresql":
            self._run_pg()
        else:
            self._run_socket()
