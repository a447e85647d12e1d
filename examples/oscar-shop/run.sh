#!/usr/bin/env bash
# A django-oscar shop beside the sandbox OMS, connected through mcom, with one command:
# install (mcom + django-oscar), create the instance (SQLite, Oscar's and mcom's tables, a demo
# catalogue with stock), start the sandbox OMS on :8089, then the storefront + dashboard + mcom admin
# + OMS endpoint on :8000 with mcom's cron (export, worker, the adapter's jobs). Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/../.."

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip 2> >(grep -v "^WARNING: Location" >&2)
.venv/bin/pip install -q -e ".[oscar]" 2> >(grep -v "^WARNING: Location" >&2)
MCOM=.venv/bin/mcom
# shellcheck source=scripts/sandbox.sh
. scripts/sandbox.sh

export DJANGO_SETTINGS_MODULE=mcom.contrib.oscar.settings
export MCOM_ROOT="${MCOM_ROOT:-$PWD/examples/oscar-shop/instance}"
PORT=${PORT:-8000}
SANDBOX_PORT=${SANDBOX_PORT:-8089}
SANDBOX_SECRET=${SANDBOX_SECRET:-sandbox-client-secret}
ADMIN_PASSWORD=${ADMIN_PASSWORD:-mcom-demo-2026}
mkdir -p "$MCOM_ROOT"

if [ ! -f "$MCOM_ROOT/var/.oscar-demo-ready" ]; then
  $MCOM setup:install --no-interaction \
    --base-url "http://127.0.0.1:$PORT" \
    --admin-user admin --admin-password "$ADMIN_PASSWORD" --admin-email admin@example.com \
    --service-bus-url "http://127.0.0.1:$SANDBOX_PORT/" \
    --oauth-server-url "http://127.0.0.1:$SANDBOX_PORT/" \
    --oauth-client-id mcom --oauth-client-secret "$SANDBOX_SECRET"
  .venv/bin/python -m mcom.contrib.oscar.demo --site-domain "127.0.0.1:$PORT" --channel oscar-shop
  .venv/bin/django-admin rebuild_index --noinput --verbosity 0
  touch "$MCOM_ROOT/var/.oscar-demo-ready"
fi

start_sandbox

$MCOM setup:upgrade   # migrations + registration with the sandbox OMS
echo
echo "  Oscar storefront:  http://127.0.0.1:$PORT/"
echo "  Oscar dashboard:   http://127.0.0.1:$PORT/dashboard/  (admin@example.com / $ADMIN_PASSWORD)"
echo "  mcom admin:        http://127.0.0.1:$PORT/admin/  (admin / $ADMIN_PASSWORD) -> MCOM"
echo "  Sandbox OMS:       http://127.0.0.1:$SANDBOX_PORT/"
echo
$MCOM serve --host 127.0.0.1 --port "$PORT"
