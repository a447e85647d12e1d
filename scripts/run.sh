#!/usr/bin/env bash
# Quick start: install mcom, create a demo instance in ./demo (SQLite, sample data), start the
# sandbox OMS on :8089 and the connector on :8000, already configured to talk to each other.
#
# Environment (all optional):
#   PYTHON=python3.12        interpreter for the virtualenv (default python3)
#   MCOM_ROOT=/path/demo     the demo instance root (default ./demo)
#   PORT=8000                the connector's port
#   SANDBOX_PORT=8089        the sandbox OMS's port
#   SANDBOX_SECRET=…         the sandbox's OAuth client secret (default sandbox-client-secret)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip 2> >(grep -v "^WARNING: Location" >&2)
.venv/bin/pip install -q -e . 2> >(grep -v "^WARNING: Location" >&2)
MCOM=.venv/bin/mcom
# shellcheck source=scripts/sandbox.sh
. scripts/sandbox.sh

export MCOM_ROOT="${MCOM_ROOT:-$PWD/demo}"
PORT=${PORT:-8000}
SANDBOX_PORT=${SANDBOX_PORT:-8089}
SANDBOX_SECRET=${SANDBOX_SECRET:-sandbox-client-secret}
mkdir -p "$MCOM_ROOT"

if [ ! -f "$MCOM_ROOT/var/.demo-ready" ]; then
  $MCOM setup:install --no-interaction \
    --base-url "http://127.0.0.1:$PORT" \
    --admin-user admin --admin-password mcom-demo-2026 \
    --service-bus-url "http://127.0.0.1:$SANDBOX_PORT/" \
    --oauth-server-url "http://127.0.0.1:$SANDBOX_PORT/" \
    --oauth-client-id mcom --oauth-client-secret "$SANDBOX_SECRET"
  $MCOM config:set mcom/general/sales_channel_id default
  $MCOM sampledata:deploy --products 200 --orders 20 --stores 1
  touch "$MCOM_ROOT/var/.demo-ready"
  FIRST_RUN=1
fi

start_sandbox

$MCOM setup:upgrade   # migrations + registration with the sandbox OMS
if [ -n "${FIRST_RUN:-}" ]; then
  $MCOM oms:catalog-export:run -s >/dev/null   # the sandbox learns the sample products (cron runs it)
fi
echo
echo "  Connector admin:  http://127.0.0.1:$PORT/admin/  (admin / mcom-demo-2026) -> MCOM"
echo "  Sandbox OMS:      http://127.0.0.1:$SANDBOX_PORT/"
echo "  REST API docs:    http://127.0.0.1:$PORT/api/docs"
echo "  Health, metrics:  http://127.0.0.1:$PORT/healthz  /readyz  /metrics"
echo
$MCOM serve --host 127.0.0.1 --port "$PORT"
