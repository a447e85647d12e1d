"""The sandbox's own SQLite database: schema, connection handling and queries.

One connection shared by all threads behind a lock (the app runs its handlers on the
event loop, so the lock is almost never contended); WAL + ``synchronous=NORMAL``; every
write path runs in one explicit transaction (:meth:`Store.tx`). Statements are reused
from the ``sqlite3`` statement cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcom.sandbox.protocol import dumps, now_iso

# Bus secrets of the registered integrations live in memory only (keyed by the connection):
# the database keeps a fingerprint, so a copied sandbox file reveals no secret. After a sandbox
# restart the connector registers again (``mcom oms:register``) before deliveries are signed.
_SECRETS: dict[tuple[int, str], str] = {}

SCHEMA = """
CREATE TABLE IF NOT EXISTS integration (
    id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL, subscribes TEXT NOT NULL,
    labels TEXT NOT NULL, payload TEXT NOT NULL, registered_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sales_order (
    id TEXT PRIMARY KEY, store TEXT NOT NULL, status TEXT NOT NULL, status_reason TEXT NOT NULL,
    status_date TEXT NOT NULL, payload TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS order_line (
    order_id TEXT NOT NULL, line_id TEXT NOT NULL, line_number INTEGER NOT NULL, sku TEXT NOT NULL,
    product_type TEXT NOT NULL, quantity REAL NOT NULL, qty_shipped REAL NOT NULL DEFAULT 0,
    qty_cancelled REAL NOT NULL DEFAULT 0, status TEXT NOT NULL, status_reason TEXT NOT NULL,
    status_date TEXT NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (order_id, line_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS shipment (
    id TEXT PRIMARY KEY, order_id TEXT NOT NULL, payload TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS shipment_order ON shipment (order_id);
CREATE TABLE IF NOT EXISTS shipping_details (
    id INTEGER PRIMARY KEY, order_id TEXT NOT NULL, packages TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS product (
    sku TEXT PRIMARY KEY, type TEXT NOT NULL, name TEXT NOT NULL, enabled INTEGER NOT NULL,
    payload TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stock_aggregate (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS source (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, aggregate_ids TEXT NOT NULL,
    address TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inventory (
    sku TEXT NOT NULL, source_id TEXT NOT NULL, qty REAL NOT NULL,
    PRIMARY KEY (sku, source_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rma (
    rma TEXT PRIMARY KEY, order_id TEXT NOT NULL, status TEXT NOT NULL, payload TEXT NOT NULL,
    refund_status TEXT NOT NULL DEFAULT '', credit_note_number TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS rma_order ON rma (order_id);
CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, direction TEXT NOT NULL,
    method TEXT NOT NULL, message_id TEXT NOT NULL, counterpart TEXT NOT NULL, payload TEXT NOT NULL,
    status TEXT NOT NULL, error TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', http_status INTEGER,
    redelivery_of INTEGER);
CREATE INDEX IF NOT EXISTS journal_method ON journal (method, id);
"""

DEFAULT_ADDRESS: dict[str, Any] = {
    "address1": "1 Warehouse Road", "address2": "", "address_type": "source", "city": "Berlin",
    "state": "", "zip": "10115", "country_code": "DE", "first_name": "Sandbox", "last_name": "Warehouse",
    "email": "wh1@sandbox.invalid", "phone": "", "latitude": None, "longitude": None, "custom_attributes": [],
}


@dataclass(frozen=True, slots=True)
class Integration:
    id: str
    url: str
    secret: str
    subscribes: tuple[str, ...]
    secret_lost: bool = False  # registered with a secret this process no longer knows (sandbox restarted)

    def public(self) -> dict[str, Any]:
        """The registration without its secret (for the UI and the API)."""
        return {"id": self.id, "url": self.url, "subscribes": list(self.subscribes)}


@dataclass(frozen=True, slots=True)
class Line:
    line_id: str
    line_number: int
    sku: str
    product_type: str
    quantity: float
    qty_shipped: float
    qty_cancelled: float
    status: str
    status_reason: str
    status_date: str
    payload: dict[str, Any]

    @property
    def remaining(self) -> float:
        return self.quantity - self.qty_shipped - self.qty_cancelled

    @property
    def is_shipping(self) -> bool:
        return self.product_type.upper() == "SHIPPING"


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    store: str
    status: str
    status_reason: str
    status_date: str
    payload: dict[str, Any]
    lines: tuple[Line, ...]
    created_at: str

    def line(self, line_id: str) -> Line | None:
        return next((ln for ln in self.lines if ln.line_id == line_id), None)


class Store:
    """Owner of the sandbox's SQLite connection."""

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            private_file(Path(path))
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                     cached_statements=256)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=OFF")
        self._conn.executescript(SCHEMA)
        with self.tx() as db:
            seed(db)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolls back on any exception and re-raises it."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    def close(self) -> None:
        with self._lock:
            for key in [k for k in _SECRETS if k[0] == id(self._conn)]:
                del _SECRETS[key]
            self._conn.close()


def private_file(path: Path) -> None:
    """Create ``path`` (and SQLite's -wal/-shm, which copy its mode) readable by the owner only (0600)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        path.chmod(0o600)
    except OSError:  # pragma: no cover - read-only or non-POSIX filesystem
        pass


def fingerprint(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()[:16] if secret else ""


def seed(db: sqlite3.Connection) -> None:
    """Default aggregate ``default`` and source ``WH1`` on a fresh database."""
    if db.execute("SELECT 1 FROM stock_aggregate LIMIT 1").fetchone() is None:
        db.execute("INSERT INTO stock_aggregate (id, name) VALUES ('default', 'Default stock')")
    if db.execute("SELECT 1 FROM source LIMIT 1").fetchone() is None:
        db.execute(
            "INSERT INTO source (id, name, type, aggregate_ids, address) VALUES (?, ?, ?, ?, ?)",
            ("WH1", "Warehouse 1", "Warehouse", dumps(["default"]), dumps(DEFAULT_ADDRESS)),
        )


# --- counters ----------------------------------------------------------------------------
def next_counter(db: sqlite3.Connection, name: str) -> int:
    row = db.execute(
        "INSERT INTO counter (name, value) VALUES (?, 1) "
        "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value", (name,)
    ).fetchone()
    return int(row[0])


# --- journal -----------------------------------------------------------------------------
def journal_add(
    db: sqlite3.Connection, *, direction: str, method: str, message_id: str, counterpart: str,
    payload: str, status: str, error: str = "", note: str = "", http_status: int | None = None,
    redelivery_of: int | None = None,
) -> int:
    cur = db.execute(
        "INSERT INTO journal (created_at, direction, method, message_id, counterpart, payload, status,"
        " error, note, http_status, redelivery_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (now_iso(), direction, method, message_id, counterpart, payload, status, error, note, http_status,
         redelivery_of),
    )
    return int(cur.lastrowid or 0)


def journal_list(
    db: sqlite3.Connection, *, method: str | None = None, direction: str | None = None,
    status: str | None = None, limit: int = 200, before_id: int | None = None,
) -> list[dict[str, Any]]:
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("method", method), ("direction", direction), ("status", status)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    if before_id is not None:
        where.append("id < ?")
        args.append(before_id)
    sql = "SELECT * FROM journal" + (" WHERE " + " AND ".join(where) if where else "")  # noqa: S608
    rows = db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
    return [_journal_row(r) for r in rows]


def journal_get(db: sqlite3.Connection, entry_id: int) -> dict[str, Any] | None:
    row = db.execute("SELECT * FROM journal WHERE id = ?", (entry_id,)).fetchone()
    return _journal_row(row) if row else None


def _journal_row(row: sqlite3.Row) -> dict[str, Any]:
    entry = dict(row)
    try:
        entry["payload"] = json.loads(row["payload"]) if row["payload"] else None
    except ValueError:
        entry["payload"] = row["payload"]
    return entry


# --- integrations ------------------------------------------------------------------------
def integration_put(db: sqlite3.Connection, *, id: str, url: str, secret: str,
                    subscribes: list[str], labels: dict[str, Any], payload: dict[str, Any]) -> None:
    db.execute("DELETE FROM integration WHERE id = ?", (id,))
    db.execute(
        "INSERT INTO integration (id, url, secret, subscribes, labels, payload, registered_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (id, url, fingerprint(secret), dumps(subscribes), dumps(labels), dumps(payload), now_iso()),
    )
    _SECRETS[(id_of(db), id)] = secret


def id_of(db: sqlite3.Connection) -> int:
    return id(db)


def integration_delete(db: sqlite3.Connection, id: str) -> bool:
    _SECRETS.pop((id_of(db), id), None)
    return db.execute("DELETE FROM integration WHERE id = ?", (id,)).rowcount > 0


def integrations(db: sqlite3.Connection) -> list[Integration]:
    rows = db.execute("SELECT id, url, secret, subscribes FROM integration ORDER BY rowid").fetchall()
    key = id_of(db)
    out = []
    for r in rows:
        secret = _SECRETS.get((key, r["id"]))
        out.append(Integration(r["id"], r["url"], secret or "", tuple(json.loads(r["subscribes"])),
                               secret_lost=secret is None and bool(r["secret"])))
    return out


def integration_details(db: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = db.execute("SELECT * FROM integration ORDER BY rowid").fetchall()
    return [
        {"id": r["id"], "url": r["url"], "subscribes": json.loads(r["subscribes"]),
         "labels": json.loads(r["labels"]), "registered_at": r["registered_at"],
         "extra": {k: v for k, v in json.loads(r["payload"]).items()
                   if k not in ("id", "url", "secret", "subscribes", "topics", "labels")}}
        for r in rows
    ]


# --- orders ------------------------------------------------------------------------------
def order_exists(db: sqlite3.Connection, order_id: str) -> bool:
    return db.execute("SELECT 1 FROM sales_order WHERE id = ?", (order_id,)).fetchone() is not None


def order_insert(db: sqlite3.Connection, order: dict[str, Any], lines: list[tuple[Any, ...]]) -> None:
    """Insert an order; ``lines`` are ``(line_id, line_number, sku, product_type, quantity, payload)``."""
    now = now_iso()
    db.execute(
        "INSERT INTO sales_order (id, store, status, status_reason, status_date, payload, created_at,"
        " updated_at) VALUES (?, ?, 'NEW', 'NEWFRONTEND', ?, ?, ?, ?)",
        (str(order["id"]), str(order.get("store") or ""), now, dumps(order), now, now),
    )
    db.executemany(
        "INSERT INTO order_line (order_id, line_id, line_number, sku, product_type, quantity, status,"
        " status_reason, status_date, payload) VALUES (?, ?, ?, ?, ?, ?, 'NEW', 'INITIALORDER', ?, ?)",
        [(str(order["id"]), lid, num, sku, ptype, qty, now, payload)
         for lid, num, sku, ptype, qty, payload in lines],
    )


def order_get(db: sqlite3.Connection, order_id: str) -> Order | None:
    row = db.execute("SELECT * FROM sales_order WHERE id = ?", (order_id,)).fetchone()
    if row is None:
        return None
    lines = tuple(
        Line(r["line_id"], r["line_number"], r["sku"], r["product_type"], r["quantity"], r["qty_shipped"],
             r["qty_cancelled"], r["status"], r["status_reason"], r["status_date"], json.loads(r["payload"]))
        for r in db.execute("SELECT * FROM order_line WHERE order_id = ? ORDER BY line_number, line_id",
                            (order_id,))
    )
    return Order(row["id"], row["store"], row["status"], row["status_reason"], row["status_date"],
                 json.loads(row["payload"]), lines, row["created_at"])


def order_list(db: sqlite3.Connection, *, q: str = "", limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    sql = ("SELECT o.id, o.store, o.status, o.status_reason, o.created_at, o.updated_at,"
           " (SELECT COUNT(*) FROM order_line l WHERE l.order_id = o.id) AS line_count FROM sales_order o")
    args: list[Any] = []
    if q:
        sql += " WHERE o.id LIKE ?"
        args.append(f"%{q}%")
    rows = db.execute(sql + " ORDER BY o.created_at DESC, o.id DESC LIMIT ? OFFSET ?",
                      (*args, limit, offset)).fetchall()
    return [dict(r) for r in rows]


def order_set_status(db: sqlite3.Connection, order_id: str, status: str, reason: str) -> None:
    now = now_iso()
    db.execute("UPDATE sales_order SET status = ?, status_reason = ?, status_date = ?, updated_at = ?"
               " WHERE id = ?", (status, reason, now, now, order_id))


def line_update(db: sqlite3.Connection, order_id: str, line_id: str, *, qty_shipped: float,
                qty_cancelled: float, status: str, reason: str) -> None:
    db.execute(
        "UPDATE order_line SET qty_shipped = ?, qty_cancelled = ?, status = ?, status_reason = ?,"
        " status_date = ? WHERE order_id = ? AND line_id = ?",
        (qty_shipped, qty_cancelled, status, reason, now_iso(), order_id, line_id),
    )


def shipment_add(db: sqlite3.Connection, shipment_id: str, order_id: str, payload: dict[str, Any]) -> None:
    db.execute("INSERT INTO shipment (id, order_id, payload, created_at) VALUES (?, ?, ?, ?)",
               (shipment_id, order_id, dumps(payload), now_iso()))


def shipments(db: sqlite3.Connection, order_id: str) -> list[dict[str, Any]]:
    rows = db.execute("SELECT * FROM shipment WHERE order_id = ? ORDER BY created_at, id", (order_id,))
    return [{"id": r["id"], "created_at": r["created_at"], "payload": json.loads(r["payload"])} for r in rows]


def shipping_details_add(db: sqlite3.Connection, order_id: str, packages: Any) -> None:
    db.execute("INSERT INTO shipping_details (order_id, packages, created_at) VALUES (?, ?, ?)",
               (order_id, dumps(packages), now_iso()))


def shipping_details(db: sqlite3.Connection, order_id: str) -> list[dict[str, Any]]:
    rows = db.execute("SELECT * FROM shipping_details WHERE order_id = ? ORDER BY id", (order_id,))
    return [{"created_at": r["created_at"], "packages": json.loads(r["packages"])} for r in rows]


# --- products ----------------------------------------------------------------------------
def product_upsert(db: sqlite3.Connection, product: dict[str, Any], name: str, enabled: bool) -> None:
    db.execute(
        "INSERT INTO product (sku, type, name, enabled, payload, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(sku) DO UPDATE SET type = excluded.type, name = excluded.name,"
        " enabled = excluded.enabled, payload = excluded.payload, updated_at = excluded.updated_at",
        (str(product["sku"]), str(product.get("type") or ""), name, int(enabled), dumps(product), now_iso()),
    )


def product_list(db: sqlite3.Connection, *, q: str = "", limit: int = 100, offset: int = 0,
                 full: bool = False) -> list[dict[str, Any]]:
    sql = "SELECT * FROM product"
    args: list[Any] = []
    if q:
        sql += " WHERE sku LIKE ? OR name LIKE ?"
        args += [f"%{q}%", f"%{q}%"]
    rows = db.execute(sql + " ORDER BY sku LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()
    out = []
    for r in rows:
        item = {"sku": r["sku"], "type": r["type"], "name": r["name"], "enabled": bool(r["enabled"]),
                "updated_at": r["updated_at"]}
        if full:
            item["payload"] = json.loads(r["payload"])
        out.append(item)
    return out


def product_get(db: sqlite3.Connection, sku: str) -> dict[str, Any] | None:
    r = db.execute("SELECT payload FROM product WHERE sku = ?", (sku,)).fetchone()
    return json.loads(r["payload"]) if r else None


def all_skus(db: sqlite3.Connection) -> list[str]:
    return [r[0] for r in db.execute("SELECT sku FROM product ORDER BY sku")]


# --- stock -------------------------------------------------------------------------------
def aggregates(db: sqlite3.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in db.execute("SELECT id, name FROM stock_aggregate ORDER BY id")]


def aggregate_get(db: sqlite3.Connection, aggregate_id: str) -> dict[str, Any] | None:
    r = db.execute("SELECT id, name FROM stock_aggregate WHERE id = ?", (aggregate_id,)).fetchone()
    return dict(r) if r else None


def aggregate_put(db: sqlite3.Connection, aggregate_id: str, name: str) -> None:
    db.execute("INSERT INTO stock_aggregate (id, name) VALUES (?, ?)"
               " ON CONFLICT(id) DO UPDATE SET name = excluded.name", (aggregate_id, name))


def sources(db: sqlite3.Connection) -> list[dict[str, Any]]:
    return [
        {"id": r["id"], "name": r["name"], "type": r["type"], "aggregate_ids": json.loads(r["aggregate_ids"]),
         "address": json.loads(r["address"])}
        for r in db.execute("SELECT * FROM source ORDER BY id")
    ]


def source_put(db: sqlite3.Connection, source_id: str, name: str, aggregate_ids: list[str],
               address: dict[str, Any]) -> None:
    db.execute(
        "INSERT INTO source (id, name, type, aggregate_ids, address) VALUES (?, ?, 'Warehouse', ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET name = excluded.name, aggregate_ids = excluded.aggregate_ids,"
        " address = excluded.address",
        (source_id, name, dumps(aggregate_ids), dumps(address)),
    )


def inventory_set(db: sqlite3.Connection, source_id: str, items: list[tuple[str, float]]) -> None:
    db.executemany(
        "INSERT INTO inventory (sku, source_id, qty) VALUES (?, ?, ?)"
        " ON CONFLICT(sku, source_id) DO UPDATE SET qty = excluded.qty",
        [(sku, source_id, qty) for sku, qty in items],
    )


def inventory_list(db: sqlite3.Connection, *, limit: int = 200) -> list[dict[str, Any]]:
    rows = db.execute("SELECT sku, source_id, qty FROM inventory ORDER BY sku, source_id LIMIT ?", (limit,))
    return [dict(r) for r in rows]


def aggregate_quantities(db: sqlite3.Connection, aggregate_id: str) -> dict[str, float]:
    """SKU → sum of the per-source quantities over the sources bound to ``aggregate_id``."""
    ids = [s["id"] for s in sources(db) if aggregate_id in [str(a) for a in s["aggregate_ids"]]]
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = db.execute(f"SELECT sku, SUM(qty) FROM inventory WHERE source_id IN ({marks}) GROUP BY sku",  # noqa: S608
                      ids)
    return {r[0]: float(r[1]) for r in rows}


# --- returns -----------------------------------------------------------------------------
def rma_count(db: sqlite3.Connection, order_id: str) -> int:
    return int(db.execute("SELECT COUNT(*) FROM rma WHERE order_id = ?", (order_id,)).fetchone()[0])


def rma_insert(db: sqlite3.Connection, rma: str, order_id: str, payload: dict[str, Any]) -> None:
    now = now_iso()
    db.execute("INSERT INTO rma (rma, order_id, status, payload, created_at, updated_at)"
               " VALUES (?, ?, 'REQUESTED', ?, ?, ?)", (rma, order_id, dumps(payload), now, now))


def rma_get(db: sqlite3.Connection, rma: str) -> dict[str, Any] | None:
    r = db.execute("SELECT * FROM rma WHERE rma = ?", (rma,)).fetchone()
    if r is None:
        return None
    return {**dict(r), "payload": json.loads(r["payload"])}


def rma_list(db: sqlite3.Connection, *, limit: int = 200) -> list[dict[str, Any]]:
    rows = db.execute("SELECT * FROM rma ORDER BY created_at DESC, rma DESC LIMIT ?", (limit,))
    return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]


def rma_set_status(db: sqlite3.Connection, rma: str, status: str) -> None:
    db.execute("UPDATE rma SET status = ?, updated_at = ? WHERE rma = ?", (status, now_iso(), rma))


def rma_set_refund(db: sqlite3.Connection, rma: str, refund_status: str, credit_note_number: str) -> None:
    db.execute("UPDATE rma SET refund_status = ?, credit_note_number = ?, updated_at = ? WHERE rma = ?",
               (refund_status, credit_note_number, now_iso(), rma))


# --- state -------------------------------------------------------------------------------
def counts(db: sqlite3.Connection) -> dict[str, int]:
    tables = {"integrations": "integration", "orders": "sales_order", "order_lines": "order_line",
              "shipments": "shipment", "products": "product", "aggregates": "stock_aggregate",
              "sources": "source", "inventory": "inventory", "returns": "rma", "journal": "journal"}
    out = {key: int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608
           for key, table in tables.items()}
    out["journal_errors"] = int(db.execute("SELECT COUNT(*) FROM journal WHERE status = 'ERROR'").fetchone()[0])
    return out
