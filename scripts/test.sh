#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need, then runs
# ruff, mypy and pytest on SQLite and on the local PostgreSQL (127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip 2> >(grep -v "^WARNING: Location" >&2)
.venv/bin/pip install -q -e ".[test,oscar]" ./examples/mcom-example-plugin 2> >(grep -v "^WARNING: Location" >&2)

# Debian's chromium for the admin browser tests (Playwright cannot download browsers here).
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q && $SUDO apt-get install -y -q chromium || echo "warning: chromium not installed; browser tests will be skipped" >&2
fi

PG_URL=${MCOM_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/mcom}
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

echo "== ruff"; .venv/bin/ruff check src tests bench examples
echo "== mypy"; .venv/bin/mypy

run_pytest() {
  set +e
  "$@"
  rc=$?
  set -e
  # 5 = no tests collected: not a failure of the suite
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then exit "$rc"; fi
}
echo "== pytest (SQLite)"; run_pytest .venv/bin/python -m pytest -q "$@"
echo "== pytest (PostgreSQL)"; MCOM_DB__URL="$PG_URL" run_pytest .venv/bin/python -m pytest -q "$@"
# the django-oscar adapter: its own settings module (Oscar's apps beside mcom's), both databases
OSCAR=(.venv/bin/python -m pytest -q tests/contrib_oscar --ds=mcom.contrib.oscar.settings)
if [ "$#" -eq 0 ]; then
  echo "== pytest oscar (SQLite)"; run_pytest "${OSCAR[@]}"
  echo "== pytest oscar (PostgreSQL)"; MCOM_DB__URL="$PG_URL" run_pytest "${OSCAR[@]}"
fi
