#!/usr/bin/env bash
# openapi.yaml against the real service: schemathesis (pinned in target/py by tests/run.sh) with
# every phase and every check (see schemathesis.toml), against the debug binary on a free port
# with the embedded defaults: the memory store and the `demo` tenant, with its API key.
set -euo pipefail
cd "$(dirname "$0")/../.."

binary=target/debug/invitetomedia
[ -x "$binary" ] || cargo build --locked --quiet
port=$(target/py/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
INVITETOMEDIA__SERVER__PORT=$port RUST_LOG=warn "$binary" >"$log" 2>&1 &
service=$!
trap 'kill $service 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 $service 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
target/py/bin/st run openapi.yaml --url "http://127.0.0.1:$port" \
  -H "Authorization: Bearer demo-api-key" --no-color "$@"
