"""``mcom.service_bus.log`` is the only code that inserts into the message log or changes a status.

An AST check over ``src/mcom`` (migrations aside): outside ``service_bus/log.py`` no module may

- call ``.update(status=…)``, ``.create(``, ``.bulk_create(``, ``.bulk_update(``,
  ``.get_or_create(`` or ``.update_or_create(`` on ``LoggedMessage``/``LM`` querysets,
- assign a ``LoggedMessage``/``Status`` value to a ``.status`` attribute,
- name the table in raw SQL (``LoggedMessage._meta.db_table``, or a string with ``INSERT``/``UPDATE``
  and ``mcom_logged_messages_queue``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import mcom

SRC = Path(mcom.__file__).resolve().parent
OWNER = SRC / "service_bus" / "log.py"
TABLE = "mcom_logged_messages_queue"
MODEL_NAMES = {"LoggedMessage", "LM"}
STATUS_NAMES = MODEL_NAMES | {"Status"}
WRITES = {"create", "bulk_create", "bulk_update", "get_or_create", "update_or_create"}
SQL_WRITE = re.compile(r"\b(INSERT\s+INTO|UPDATE)\b")


def _root(node: ast.AST) -> str | None:
    """The name a call/attribute chain starts from (``LoggedMessage`` in ``LoggedMessage.objects.filter().update``)."""
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        else:
            return node.id if isinstance(node, ast.Name) else None


def violations(source: str, name: str = "<src>") -> list[str]:
    """What in ``source`` writes the message log (``file:line: what``)."""
    found: list[str] = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        where = f"{name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _root(node.func.value) in MODEL_NAMES:
            method = node.func.attr
            if method in WRITES or (method == "update" and any(k.arg == "status" for k in node.keywords)):
                found.append(f"{where}: LoggedMessage ….{method}(…)")
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for t in target.elts if isinstance(target, ast.Tuple) else [target]:
                    if not (isinstance(t, ast.Attribute) and t.attr == "status"):
                        continue
                    values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
                    if any(isinstance(v, ast.Attribute) and _root(v) in STATUS_NAMES for v in values):
                        found.append(f"{where}: assigns a message status")
        elif isinstance(node, ast.Attribute) and node.attr == "db_table" and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "_meta" and _root(node.value) in MODEL_NAMES:
            found.append(f"{where}: raw SQL on the message log table")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and TABLE in node.value \
                and SQL_WRITE.search(node.value):
            found.append(f"{where}: raw INSERT/UPDATE of {TABLE}")
    return found


def test_only_the_log_module_writes_the_message_log() -> None:
    files = [p for p in SRC.rglob("*.py") if p != OWNER and "migrations" not in p.parts]
    assert len(files) > 50
    found = [v for p in files for v in violations(p.read_text(encoding="utf-8"), str(p.relative_to(SRC)))]
    assert found == []


def test_the_owner_module_is_where_the_writes_are() -> None:
    found = violations(OWNER.read_text(encoding="utf-8"), "log.py")
    assert any("create" in v for v in found)
    assert any("raw SQL" in v for v in found)
    assert any("status" in v for v in found)


def test_the_check_catches_each_kind_of_write() -> None:
    snippets = {
        "LoggedMessage.objects.filter(pk=1).update(status=LoggedMessage.IGNORED)": "update",
        "LM.objects.create(topic='x')": "create",
        "LoggedMessage.objects.bulk_create(rows)": "bulk_create",
        "msg.status = LoggedMessage.ERROR": "status",
        "msg.status, msg.x = Status.RETRY, 1": "status",
        "t = LoggedMessage._meta.db_table": "raw SQL",
        "cur.execute('UPDATE mcom_logged_messages_queue SET status = 1')": "raw INSERT/UPDATE",
        "sql = 'INSERT INTO mcom_logged_messages_queue (a) VALUES (1)'": "raw INSERT/UPDATE",
    }
    for code, what in snippets.items():
        found = violations(code)
        assert len(found) == 1, code
        assert what in found[0], code
    allowed = [
        "LoggedMessage.objects.filter(status=LoggedMessage.ERROR).count()",
        "Order.objects.filter(pk=1).update(status='x')",
        "order.status = Order.PENDING",
        '"""The message log mcom_logged_messages_queue: every message."""',
    ]
    for code in allowed:
        assert violations(code) == [], code
