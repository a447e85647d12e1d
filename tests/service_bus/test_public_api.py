"""Dependencies point one way: connector modules use the service bus's public API only, the service
bus imports no connector module, and post-sales does not reach into the sales module."""

from __future__ import annotations

import ast
from pathlib import Path

import mcom
from mcom.service_bus import PUBLIC_MODULES

SRC = Path(mcom.__file__).resolve().parent
CONNECTORS = ("sales", "catalog", "inventory", "postsales")


def _imports(path: Path) -> set[str]:
    """Every ``mcom…`` module ``path`` imports (``from a import b`` counts as ``a`` and ``a.b``)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in out if m.startswith("mcom.")}


def _files(package: str) -> list[Path]:
    return [p for p in (SRC / package).rglob("*.py") if "migrations" not in p.parts]


def test_connector_modules_use_only_the_public_service_bus_api() -> None:
    found = []
    for package in CONNECTORS:
        for path in _files(package):
            for name in _imports(path):
                parts = name.split(".")
                if parts[:2] == ["mcom", "service_bus"] and len(parts) > 2 and parts[2] not in PUBLIC_MODULES:
                    found.append(f"{path.relative_to(SRC)}: {name}")
    assert found == []


def test_the_service_bus_imports_no_connector_module() -> None:
    found = [
        f"{path.relative_to(SRC)}: {name}"
        for path in _files("service_bus")
        for name in _imports(path)
        if name.split(".")[1] in (*CONNECTORS, "adminui")
    ]
    assert found == []


def test_the_service_bus_reads_no_store_config_but_for_the_registration_url() -> None:
    found = {path.name for path in _files("service_bus") if "mcom.commerce.config" in _imports(path)}
    assert found <= {"registration.py"}  # web/base_url fallback of the inbound URL (owned with registration)


def test_the_served_ingest_path_imports_before_django_is_set_up() -> None:
    """``mcom.asgi`` imports the ingest handler before ``get_asgi_application()`` sets Django up."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = "import mcom.service_bus.ingest, mcom.service_bus.endpoint, django.apps as a; assert not a.apps.ready"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)


def test_post_sales_does_not_reach_into_the_sales_module() -> None:
    found = [f"{p.relative_to(SRC)}: {n}" for p in _files("postsales") for n in _imports(p) if n.startswith("mcom.sales")]
    assert found == []
