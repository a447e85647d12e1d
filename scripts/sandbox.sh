# Sourced by scripts/run.sh and examples/oscar-shop/run.sh: start the sandbox OMS in the background
# (its secret through the environment, never the command line), stop it when the script exits, and
# wait until it answers. Needs MCOM, MCOM_ROOT, SANDBOX_PORT and SANDBOX_SECRET.
start_sandbox() {
  SANDBOX_CLIENT_SECRET="$SANDBOX_SECRET" $MCOM oms:sandbox --host 127.0.0.1 --port "$SANDBOX_PORT" --client-id mcom \
    --db "$MCOM_ROOT/var/sandbox.sqlite3" &
  SANDBOX_PID=$!
  trap 'kill $SANDBOX_PID 2>/dev/null || true' EXIT INT TERM
  for _ in $(seq 1 50); do
    curl -fsS -o /dev/null "http://127.0.0.1:$SANDBOX_PORT/" 2>/dev/null && break; sleep 0.2
  done
}
