"""pytest plugin loaded with ``-p mcom.testing.plugin`` (see pyproject): runs before Django settings
are imported, so every test session gets its own throw-away instance root.

The database comes from ``MCOM_DB__URL`` (default: SQLite in the temporary root); Django's test
runner creates ``test_<name>_<pid>`` on PostgreSQL, so parallel sessions never collide.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

if not os.environ.get("MCOM_ROOT_KEEP"):
    _root = Path(tempfile.mkdtemp(prefix="mcom-test-"))
    (_root / "etc").mkdir()
    (_root / "var" / "log").mkdir(parents=True)
    os.environ["MCOM_ROOT"] = str(_root)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcom.settings")
os.environ["MCOM_TESTING"] = "1"
