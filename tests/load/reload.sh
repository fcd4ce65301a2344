#!/usr/bin/env bash
# Reloads under load: wrk sends creates and redemptions (unlimited link, a fresh device each)
# for RELOAD_SECONDS (default 20) without reloads, then as long again while the tenant's file is
# rewritten every RELOAD_EVERY seconds (default 0.2), alternating two valid configurations
# (LinkDuration 1440 and 720) and sending SIGHUP after each write. Prints requests/s, p99 and
# non-2xx answers of both runs, and the reloads the service counted. Both configurations allow
# every request sent, so any non-2xx answer is a request a reload failed.
#
#   bash tests/load/reload.sh                 # release build
#   RELOAD_PROFILE=debug RELOAD_SECONDS=2 bash tests/load/reload.sh   # smoke run
#
# Needs wrk, redis-server, redis-cli, python3, curl.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_PER_RUN=${RELOAD_SECONDS:-20}
EVERY=${RELOAD_EVERY:-0.2}
PROFILE=${RELOAD_PROFILE:-release}
for tool in wrk redis-server redis-cli python3 curl; do
  command -v "$tool" >/dev/null || { echo "reload: $tool is required" >&2; exit 1; }
done
if [ "$PROFILE" = release ]; then cargo build --release --locked --quiet; else cargo build --locked --quiet; fi
BIN=$PWD/target/$PROFILE/invitetomedia

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --maxmemory-policy noeviction \
  --daemonize no --logfile "$WORK/redis.log" >/dev/null &
PIDS+=($!)
for _ in $(seq 1 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

API_KEY=reload-api-key-0123456789
"$BIN" keygen --alg HS256 > "$WORK/invite.key"
"$BIN" keygen --alg EdDSA > "$WORK/grant.pem"
HASH=$(printf %s "$API_KEY" | "$BIN" hash-key)
PORT=$(free_port)
mkdir -p "$WORK/tenants" "$WORK/run"
cat > "$WORK/config.toml" <<EOF
tenants_dir = "$WORK/tenants"
[server]
port = $PORT
public_base_url = "http://127.0.0.1:$PORT"
[store]
backend = "redis"
redis_url = "redis://127.0.0.1:$RPORT"
key_prefix = "r"
[keys]
invite = [ { kid = "r1", alg = "HS256", secret_file = "$WORK/invite.key" } ]
grant = [ { kid = "g1", alg = "EdDSA", private_key_file = "$WORK/grant.pem" } ]
EOF
tenant() { # $1 = LinkDuration
  cat > "$WORK/tenants/.bench.tmp" <<EOF
name = "Bench"
api_keys = ["$HASH"]
accept_url = "http://127.0.0.1:$PORT/demo/accept"
grant_audience = "bench"
[invitetomedia]
enable = true
LinkDuration = $1
LinkReusability = -1
EOF
  mv "$WORK/tenants/.bench.tmp" "$WORK/tenants/bench.toml"
}
tenant 1440
(cd "$WORK/run" && RUST_LOG=warn INVITETOMEDIA_CONFIG="$WORK/config.toml" exec "$BIN" > "$WORK/service.log" 2>&1) &
SPID=$!
PIDS+=($SPID)
for _ in $(seq 1 200); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.05; done

BODY='{"media":{"id":"1_abc","type":"room","title":"Reload seminar"},"inviter":{"id":"prof1","name":"Prof One","role":"adminRole","permission":"owner"},"invitee":{"email":"ada@example.com","first_name":"Ada","last_name":"Lovelace","role":"viewer"}}'
TOKEN=$(curl -fsS -X POST "http://127.0.0.1:$PORT/v1/invites" -H "Authorization: Bearer $API_KEY" \
  -H 'Content-Type: application/json' -d "$BODY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
cat > "$WORK/mixed.lua" <<EOF
local counter = 0
setup = function(thread) thread:set("id", counter); counter = counter + 1 end
local n = 0
request = function()
  n = n + 1
  if n % 2 == 0 then
    return wrk.format("POST", "/v1/invites", { ["Authorization"] = "Bearer $API_KEY", ["Content-Type"] = "application/json" }, [[$BODY]])
  end
  local body = string.format('{"token":"%s","email":"ada@example.com","device_id":"reload-%02d-%012d"}', "$TOKEN", id, n)
  return wrk.format("POST", "/v1/redeem", { ["Content-Type"] = "application/json" }, body)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d\n",
    latency:percentile(50), latency:percentile(99), summary.errors.status, summary.requests))
end
EOF
metric() { curl -fsS "http://127.0.0.1:$PORT/metrics" | awk -v s="$1" '$1 == s { print $2 }'; }
run() { # prints "req/s p99_ms non2xx"
  wrk -t2 -c64 -d"${SECONDS_PER_RUN}s" --latency -s "$WORK/mixed.lua" "http://127.0.0.1:$PORT" > "$WORK/wrk.out"
  python3 - "$WORK/wrk.out" "$SECONDS_PER_RUN" <<'PY'
import sys
line = next(l for l in open(sys.argv[1]) if l.startswith("RESULT"))
_, p50, p99, non2xx, requests = line.split()
print(f"{int(requests) / float(sys.argv[2]):.0f} {int(p99) / 1000:.2f} {non2xx}")
PY
}

read -r QUIET_RPS QUIET_P99 QUIET_BAD < <(run)
GEN0=$(metric invitetomedia_config_generation)
( i=0
  while :; do
    if [ $((i % 2)) -eq 0 ]; then tenant 720; else tenant 1440; fi
    kill -HUP "$SPID" 2>/dev/null || exit 0
    i=$((i + 1))
    sleep "$EVERY"
  done ) &
WRITER=$!
PIDS+=($WRITER)
read -r BUSY_RPS BUSY_P99 BUSY_BAD < <(run)
kill "$WRITER" 2>/dev/null || true
sleep 1
GEN1=$(metric invitetomedia_config_generation)
OK=$(metric 'invitetomedia_config_reloads_total{outcome="ok"}')
ERR=$(metric 'invitetomedia_config_reloads_total{outcome="error"}')

# From a file edit to the change being served, with no load: 20 edits, each polled for.
APPLIED=$(python3 - "$WORK/tenants" "$PORT" "$API_KEY" "$HASH" <<'PY'
import json, os, sys, time, urllib.request
tenants, port, key, hash_ = sys.argv[1:5]
def duration():
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/settings", headers={"Authorization": f"Bearer {key}"})
    return json.load(urllib.request.urlopen(req))["invitetomedia"]["LinkDuration"]
times = []
for i in range(20):
    minutes = 100 + i
    tmp = os.path.join(tenants, ".bench.tmp")
    with open(tmp, "w") as f:
        f.write(f'name = "Bench"\napi_keys = ["{hash_}"]\naccept_url = "http://127.0.0.1:{port}/demo/accept"\n'
                f'grant_audience = "bench"\n[invitetomedia]\nenable = true\nLinkDuration = {minutes}\nLinkReusability = -1\n')
    start = time.monotonic()
    os.rename(tmp, os.path.join(tenants, "bench.toml"))
    while duration() != minutes:
        if time.monotonic() - start > 60:
            sys.exit(f"reload: the edit to LinkDuration = {minutes} was not served within a minute")
        time.sleep(0.005)
    times.append((time.monotonic() - start) * 1000)
    time.sleep(0.3)
times.sort()
print(f"{times[0]:.0f} / {times[len(times) // 2]:.0f} / {times[-1]:.0f}")
PY
)

echo "reloads under load — $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $PROFILE build"
echo "wrk -t2 -c64, ${SECONDS_PER_RUN}s per run, creates and redemptions alternating"
printf '%-34s %10s %8s %8s\n' run "req/s" "p99 ms" non-2xx
printf '%-34s %10s %8s %8s\n' "without reloads" "$QUIET_RPS" "$QUIET_P99" "$QUIET_BAD"
printf '%-34s %10s %8s %8s\n' "file rewritten + SIGHUP every ${EVERY}s" "$BUSY_RPS" "$BUSY_P99" "$BUSY_BAD"
echo "configurations applied during the run: $((${GEN1%.*} - ${GEN0%.*})); reloads ok $OK, error $ERR"
echo "file edit to change served (20 edits, no load), min / median / max ms: $APPLIED"
if [ "$BUSY_BAD" != 0 ] || [ "$QUIET_BAD" != 0 ] || [ "${ERR%.*}" != 0 ]; then
  echo "reload: requests failed or reloads were refused" >&2
  exit 1
fi
