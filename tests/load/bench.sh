#!/usr/bin/env bash
# Benchmark of invitetomedia against its own ceiling, in ONE run on this machine:
#   GET /healthz (the binary's ceiling), POST /v1/invites, GET /i/{token},
#   POST /v1/redeem on an unlimited link (fresh device each request),
#   POST /v1/redeem on pre-created single-use links (each redeemed once),
# then redeem with 1,000 vs 1,000,000 live used links in Redis, and create with 1 vs 50
# tenants. Prints requests/s, p50, p99, the ratio to /healthz, the service's peak RSS and
# Redis bytes per redeemed single-use link.
#
# The five main phases run in BENCH_ROUNDS rounds (default 5), each round every phase in turn;
# the table shows each phase's medians over the rounds, and each ratio is the median over rounds of the
# phase against the same round's /healthz: on a shared VM the ceiling itself drifts by ±15%
# within a minute, and interleaving measures every phase under the same drift. The scaling
# pairs are measured the same way.
#
#   bash tests/load/bench.sh              # release build, 5 rounds of 3 s per phase
#   BENCH_SECONDS=1 BENCH_ROUNDS=1 BENCH_QUICK=1 bash tests/load/bench.sh   # smoke run (debug build, no 1M preload)
#
# Options: BENCH_SERVICE_CPUS / BENCH_CLIENT_CPUS pin the service, and wrk with Redis, to CPU
# lists with taskset (e.g. 0 and 1: the service on a core of its own, as in production, where
# neither a load generator nor Redis shares a pod's cores); BENCH_SCALING=0 skips the scaling pairs;
# BENCH_YIELD_PAIR=1 adds /healthz, landing and redemption against a second service with
# server.yield_after_us = 0, alternating with the default in every round.
#
# Needs wrk, redis-server, redis-cli, python3. Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_PER_PHASE=${BENCH_SECONDS:-3}
export REENTRY_DEVICES=1000
ROUNDS=${BENCH_ROUNDS:-5}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
QUICK=${BENCH_QUICK:-0}
PRELOAD=${BENCH_PRELOAD:-1000000}
# Redemption requests prepared per wrk thread and phase: enough for the whole wrk run (the
# measured seconds and one on each side) at 60k req/s. With only the measured seconds' worth,
# the last second of each unlimited-link run built its requests as it sent them.
POOL=${BENCH_POOL:-$(( (SECONDS_PER_PHASE + 2) * 30000 ))}
SERVICE_PIN=(); [ -n "${BENCH_SERVICE_CPUS:-}" ] && SERVICE_PIN=(taskset -c "$BENCH_SERVICE_CPUS")
CLIENT_PIN=(); [ -n "${BENCH_CLIENT_CPUS:-}" ] && CLIENT_PIN=(taskset -c "$BENCH_CLIENT_CPUS")
if [ "$QUICK" = 1 ]; then PROFILE=${BENCH_PROFILE:-debug}; PRELOAD=2000; ROUNDS=${BENCH_ROUNDS:-1}; else PROFILE=${BENCH_PROFILE:-release}; fi

for tool in wrk redis-server redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done
if [ "$PROFILE" = release ]; then cargo build --release --locked --quiet; else cargo build --locked --quiet; fi
BIN=target/$PROFILE/invitetomedia

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 200); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "bench: $1 did not answer" >&2; exit 1; }

# --- Redis on free ports ------------------------------------------------------------------------
start_redis() { # prints the port
  local port
  port=$(free_port)
  "${CLIENT_PIN[@]}" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --maxmemory-policy noeviction \
    --daemonize no --logfile "$WORK/redis-$port.log" >/dev/null &
  PIDS+=($!)
  for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  RPORT_STARTED=$port
}
start_redis
RPORT=$RPORT_STARTED
rcli() { redis-cli -p "$RPORT" "$@"; }

# --- Configuration: generated keys, a bench tenant (and 49 more for the tenant-count run) ----
API_KEY=bench-api-key-0123456789
"$BIN" keygen --alg HS256 > "$WORK/invite.key"
"$BIN" keygen --alg EdDSA > "$WORK/grant.pem"
write_config() { # $1 = number of tenants, $2 = port, $3 = Redis port
  python3 - "$1" "$2" "$3" "$WORK" "$("$BIN" hash-key "$API_KEY")" > "$WORK/config-$2.toml" <<'PY'
import os, sys, hashlib
tenants, port, rport, work, bench_hash = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
print(f'''[server]
port = {port}
public_base_url = "http://127.0.0.1:{port}"
[store]
backend = "redis"
redis_url = "redis://127.0.0.1:{rport}"
key_prefix = "b"
[keys]
invite = [ {{ kid = "b1", alg = "HS256", secret_file = "{work}/invite.key" }} ]
grant = [ {{ kid = "g1", alg = "EdDSA", private_key_file = "{work}/grant.pem" }} ]
[tenants.bench]
name = "Bench"
api_keys = ["{bench_hash}"]
accept_url = "http://127.0.0.1:{port}/demo/accept"
grant_audience = "bench"
[tenants.bench.invitetomedia]
enable = true
LinkDuration = 1440
LinkReusability = -1
AllowedUsers = "privateOnlyRole"
''')
# The one-time code phase's tenant, when asked for (CODED = false or true: RequireEmailCode).
if os.environ.get("CODED"):
    h = hashlib.sha256(b"coded-api-key-0123456789").hexdigest()
    print(f'''[tenants.coded]
name = "Coded"
api_keys = ["sha256:{h}"]
accept_url = "http://127.0.0.1:{port}/demo/accept"
grant_audience = "coded"
[tenants.coded.invitetomedia]
enable = true
LinkReusability = {os.environ["REENTRY_DEVICES"]}
AllowedUsers = "privateOnlyRole"
RequireEmailCode = {os.environ["CODED"]}
''')
for i in range(1, tenants):
    h = hashlib.sha256(f"other-key-{i}".encode()).hexdigest()
    print(f'''[tenants.t{i}]
name = "Tenant {i}"
api_keys = ["sha256:{h}"]
accept_url = "https://t{i}.example/accept"
grant_audience = "t{i}"
[tenants.t{i}.invitetomedia]
enable = true
''')
PY
}

SPID=
start_service() { # $1 = number of tenants, $2 = Redis port (default the main one); sets SPID, BASE
  PORT=$(free_port)
  write_config "$1" "$PORT" "${2:-$RPORT}"
  RUST_LOG=${BENCH_LOG:-warn} INVITETOMEDIA_CONFIG="$WORK/config-$PORT.toml" "${SERVICE_PIN[@]}" "$BIN" > "$WORK/service-$PORT.log" 2>&1 &
  SPID=$!
  PIDS+=($SPID)
  BASE="http://127.0.0.1:$PORT"
  wait_http "$BASE/healthz"
}
stop_service() { kill "$SPID"; wait "$SPID" 2>/dev/null || true; }

# --- wrk scripts -----------------------------------------------------------------------------
DONE='
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d\n",
    latency:percentile(50), latency:percentile(99), summary.errors.status, summary.requests))
end'
THREADS_SETUP='
local counter = 0
setup = function(thread) thread:set("id", counter); counter = counter + 1 end'
# wrk runs each thread's init() on its main thread, one thread after another, and starts each
# thread as soon as its own init() is done; while the next one builds its requests the first
# is already measuring latency against a machine with one more busy thread. These phases build
# thousands of requests in init(), so each thread marks itself ready when its init() is done
# and no thread sends before every thread is ready. (wrk also calls thread 0'"'"'s request() once
# on its main thread to check the request, right after that init(); that call must not wait.)
GATE='
local gate, threads = os.getenv("BENCH_GATE"), tonumber(os.getenv("BENCH_THREADS_RUNNING"))
local function mark_ready()
  local f = assert(io.open(gate .. "." .. id, "w"))
  f:close()
end
local waiting, checked = true, false
local function wait_for_every_thread()
  if not waiting then return end
  if id == 0 and not checked then checked = true; return end
  for t = 0, threads - 1 do
    repeat local f = io.open(gate .. "." .. t); if f then f:close() end until f
  end
  waiting = false
end'
CREATE_REQUEST='
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer '"$API_KEY"'"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{"media":{"id":"1_abc","type":"room","title":"Bench seminar"},"inviter":{"id":"prof1","name":"Prof One","role":"adminRole","permission":"owner"},"invitee":{"email":"ada@example.com","first_name":"Ada","last_name":"Lovelace","role":"viewer"},"max_uses":1}]]'
cat > "$WORK/healthz.lua" <<EOF
$DONE
EOF
cat > "$WORK/create.lua" <<EOF
$CREATE_REQUEST
$DONE
EOF
cat > "$WORK/prepare.lua" <<EOF
$CREATE_REQUEST
$THREADS_SETUP
init = function(args)
  out = io.open("$WORK/tokens." .. id, "w")
  out:setvbuf("line")
end
response = function(status, headers, body)
  if status == 201 then
    local t = body:match('"token":"([^"]+)"')
    if t then out:write(t, "\n") end
  end
end
EOF
cat > "$WORK/landing.lua" <<EOF
wrk.path = "/i/" .. os.getenv("BENCH_TOKEN")
$DONE
EOF
# Redemption requests differ per request (a fresh device, or another link), so they are built
# ahead in init(), not per request: wrk then spends as little CPU on a redemption as on the
# static /healthz request, and the service gets the same share of the two cores in every phase.
cat > "$WORK/redeem_unlimited.lua" <<EOF
$THREADS_SETUP
$GATE
local token = os.getenv("BENCH_TOKEN")
local function build(n)
  local body = string.format('{"token":"%s","email":"ada@example.com","device_id":"bench-%02d-%012d"}', token, id, n)
  return wrk.format("POST", "/v1/redeem", { ["Content-Type"] = "application/json" }, body)
end
init = function(args)
  pool, n = {}, 0
  for i = 1, $POOL do pool[i] = build(i) end
  mark_ready()
end
request = function()
  wait_for_every_thread()
  n = n + 1
  return pool[n] or build(n)
end
$DONE
EOF
# Each wrk thread of each round redeems its own share of the prepared links.
cat > "$WORK/redeem_single.lua" <<EOF
$THREADS_SETUP
$GATE
init = function(args)
  pool, n = {}, 0
  for line in io.lines("$WORK/tokens." .. os.getenv("BENCH_ROUND") .. "." .. id) do
    pool[#pool + 1] = wrk.format("POST", "/v1/redeem", { ["Content-Type"] = "application/json" },
      '{"token":"' .. line .. '","email":"ada@example.com"}')
  end
  mark_ready()
end
request = function()
  wait_for_every_thread()
  n = n + 1
  return pool[((n - 1) % #pool) + 1]
end
$DONE
EOF

# Re-entries of devices a link admitted before: on an N-use link of the bench tenant, and on
# one of a tenant with RequireEmailCode (the one-time code script decides those).
cat > "$WORK/redeem_reentry.lua" <<EOF
$THREADS_SETUP
$GATE
local token = os.getenv("BENCH_REENTRY_TOKEN")
init = function(args)
  pool, n = {}, 0
  for i = 1, $REENTRY_DEVICES do
    pool[i] = wrk.format("POST", "/v1/redeem", { ["Content-Type"] = "application/json" },
      string.format('{"token":"%s","email":"ada@example.com","device_id":"reentry-device-%04d"}', token, i))
  end
  mark_ready()
end
request = function()
  wait_for_every_thread()
  n = n + 1
  return pool[((n + id * 7919) % #pool) + 1]
end
$DONE
EOF

declare -A RPS P50 P99 NON2XX TOTAL ROUND_RESULTS
PHASE_RUNS=0
# The requests the service has answered, from its own counter (/metrics scrapes excluded).
served() {
  curl -fsS "$BASE/metrics" | python3 -c '
import sys
print(sum(float(line.rsplit(" ", 1)[1]) for line in sys.stdin
          if line.startswith("invitetomedia_http_requests_total{") and "route=\"/metrics\"" not in line))'
}
# One phase: wrk runs a second longer on each side of the measured window. wrk's own rate
# would count one thread's head start (wrk runs each thread's init() on its main thread, one
# after the other, and the first thread is already sending while the next builds its requests)
# against a clock started after the last, so req/s comes from the service's request counter
# over the window; p50 and p99 are wrk's.
run_phase() { # name script path
  local name=$1 script=$2 path=${3:-/healthz}
  local out wrk_pid before after started ended
  PHASE_RUNS=$((PHASE_RUNS + 1))
  BENCH_GATE="$WORK/gate.$PHASE_RUNS" BENCH_THREADS_RUNNING=$THREADS "${CLIENT_PIN[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$((SECONDS_PER_PHASE + 2))s" --timeout 5s -s "$script" "$BASE$path" > "$WORK/wrk.out" &
  wrk_pid=$!
  sleep 1
  before=$(served); started=$(date +%s.%N)
  sleep "$SECONDS_PER_PHASE"
  after=$(served); ended=$(date +%s.%N)
  wait "$wrk_pid"
  out=$(grep '^RESULT' "$WORK/wrk.out")
  out="$(python3 -c 'import sys; a, b, s, e = map(float, sys.argv[1:]); print(f"{(b - a) / (e - s):.0f}")' "$before" "$after" "$started" "$ended") ${out#RESULT }"
  read -r RPS[$name] P50[$name] P99[$name] NON2XX[$name] TOTAL[$name] <<< "$out"
  ROUND_RESULTS[$name]+="$out "
}
# The medians over a phase's rounds of req/s, p50 and p99; errors and requests are summed.
median_round() { # name
  local name=$1
  # shellcheck disable=SC2086 # one argument per number
  read -r RPS[$name] P50[$name] P99[$name] NON2XX[$name] TOTAL[$name] < <(python3 - ${ROUND_RESULTS[$name]} <<'PY'
import sys
v = list(map(float, sys.argv[1:]))
rounds = [v[i:i + 5] for i in range(0, len(v), 5)]
med = lambda k: sorted(r[k] for r in rounds)[len(rounds) // 2]
print(f"{med(0):.0f} {med(1):.0f} {med(2):.0f} {sum(r[3] for r in rounds):.0f} {sum(r[4] for r in rounds):.0f}")
PY
)
}
peak_rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$SPID/status"; }
used_memory() { rcli info memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r'; }

# --- The main run ------------------------------------------------------------------------------
CODED=false start_service 1
create() { curl -fsS -X POST "$BASE/v1/invites" -H "Authorization: Bearer $API_KEY" -d "$1"; }
UNLIMITED=$(create '{"media":{"id":"1_abc","type":"room","title":"Bench"},"inviter":{"id":"prof1","name":"Prof","role":"adminRole","permission":"owner"},"invitee":{"email":"ada@example.com","first_name":"Ada","last_name":"Lovelace","role":"viewer"},"max_uses":-1}' \
  | python3 -c 'import sys, json; print(json.load(sys.stdin)["token"])')
export BENCH_TOKEN=$UNLIMITED

# Two links of REENTRY_DEVICES uses, every device admitted (not measured), for the re-entry
# phases; then the coded tenant turns RequireEmailCode on by a live reload.
reentry_link() { # API key; prints the token
  local token
  token=$(curl -fsS -X POST "$BASE/v1/invites" -H "Authorization: Bearer $1" -d '{"media":{"id":"1_abc","type":"room","title":"Bench"},"inviter":{"id":"prof1","name":"Prof","role":"adminRole","permission":"owner"},"invitee":{"email":"ada@example.com","first_name":"Ada","last_name":"Lovelace","role":"viewer"},"max_uses":'"$REENTRY_DEVICES"'}' \
    | python3 -c 'import sys, json; print(json.load(sys.stdin)["token"])')
  python3 - "$BASE" "$token" "$REENTRY_DEVICES" <<'PY'
import json, sys, urllib.request
base, token, devices = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(1, devices + 1):
    body = json.dumps({"token": token, "email": "ada@example.com", "device_id": f"reentry-device-{i:04d}"}).encode()
    request = urllib.request.Request(f"{base}/v1/redeem", body, {"Content-Type": "application/json"})
    assert urllib.request.urlopen(request).status == 200
PY
  echo "$token"
}
REENTRY_OFF=$(reentry_link "$API_KEY")
REENTRY_ON=$(reentry_link coded-api-key-0123456789)
CODED=true write_config 1 "$PORT" "$RPORT"
coded_on() { curl -fsS "$BASE/v1/settings" -H "Authorization: Bearer coded-api-key-0123456789" | grep -q '"RequireEmailCode":true'; }
for _ in $(seq 1 200); do coded_on && break; sleep 0.05; done
coded_on || { echo "bench: the coded tenant did not reload" >&2; exit 1; }

# Warm-up (connections, script cache), not measured.
wrk -t"$THREADS" -c"$CONNECTIONS" -d1s "$BASE/healthz" >/dev/null

# Single-use links for every round, created before the rounds start (not measured).
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$(((SECONDS_PER_PHASE + 2) * ROUNDS + 2))s" -s "$WORK/prepare.lua" "$BASE/v1/invites" >/dev/null
cat "$WORK"/tokens.[0-9]* > "$WORK/tokens.all"
LINKS=$(wc -l < "$WORK/tokens.all")
# One file per round and wrk thread, so that no thread's init() reads more than its share.
awk -v threads="$THREADS" -v rounds="$ROUNDS" -v dir="$WORK" \
  '{ slot = (NR - 1) % (threads * rounds); print > (dir "/tokens." (slot % rounds) "." int(slot / rounds)) }' \
  "$WORK/tokens.all"
MEM_BEFORE=$(used_memory)
KEYS_BEFORE=$(rcli dbsize)
for round in $(seq 0 $((ROUNDS - 1))); do
  export BENCH_ROUND=$round
  run_phase healthz "$WORK/healthz.lua" /healthz
  run_phase create "$WORK/create.lua" /v1/invites
  run_phase landing "$WORK/landing.lua" "/i/$UNLIMITED"
  run_phase redeem_unlimited "$WORK/redeem_unlimited.lua" /v1/redeem
  run_phase redeem_single "$WORK/redeem_single.lua" /v1/redeem
  BENCH_REENTRY_TOKEN=$REENTRY_OFF run_phase reentry_off "$WORK/redeem_reentry.lua" /v1/redeem
  BENCH_REENTRY_TOKEN=$REENTRY_ON run_phase reentry_on "$WORK/redeem_reentry.lua" /v1/redeem
done
for phase in healthz create landing redeem_unlimited redeem_single reentry_off reentry_on; do median_round "$phase"; done
# The same ceiling with one wrk thread, for comparison: one busy thread fewer sharing the cores,
# and a client that cannot take more than one core.
THREADS=1 run_phase healthz_t1 "$WORK/healthz.lua" /healthz
MEM_AFTER=$(used_memory)
KEYS_AFTER=$(rcli dbsize)
REDEEMED=$(( TOTAL[redeem_single] - NON2XX[redeem_single] ))
NEW_KEYS=$(( KEYS_AFTER - KEYS_BEFORE ))
PEAK_RSS=$(peak_rss_kib)

# The time slices (server.yield_after_us) against none, alternating in every round.
if [ "${BENCH_YIELD_PAIR:-0}" = 1 ]; then
  YIELDING=$BASE; YIELDING_PID=$SPID
  INVITETOMEDIA__SERVER__YIELD_AFTER_US=0 start_service 1; NOT_YIELDING=$BASE
  wrk -t"$THREADS" -c"$CONNECTIONS" -d1s "$NOT_YIELDING/healthz" >/dev/null
  for round in $(seq 0 $((ROUNDS - 1))); do
    export BENCH_ROUND=$round
    BASE=$YIELDING run_phase y_healthz "$WORK/healthz.lua" /healthz
    BASE=$NOT_YIELDING run_phase n_healthz "$WORK/healthz.lua" /healthz
    BASE=$YIELDING run_phase y_landing "$WORK/landing.lua" "/i/$UNLIMITED"
    BASE=$NOT_YIELDING run_phase n_landing "$WORK/landing.lua" "/i/$UNLIMITED"
    BASE=$YIELDING run_phase y_redeem "$WORK/redeem_unlimited.lua" /v1/redeem
    BASE=$NOT_YIELDING run_phase n_redeem "$WORK/redeem_unlimited.lua" /v1/redeem
  done
  for phase in y_healthz n_healthz y_landing n_landing y_redeem n_redeem; do median_round "$phase"; done
  stop_service
  BASE=$YIELDING; SPID=$YIELDING_PID
fi

# Scaling, each pair measured in alternating rounds like the main phases: redemption with
# 1,000 vs $PRELOAD live used single-use links (two Redis servers, written straight in the
# service's own key shape), and create with 1 vs 50 tenants configured.
preload() { # port count
  python3 - "$2" <<'PY' | redis-cli -p "$1" --pipe >/dev/null
import sys, os, time, base64
n, exp = int(sys.argv[1]), int(time.time()) + 3600
out = sys.stdout.buffer
for i in range(n):
    key = b"b:{bench}:u:" + base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=")
    val = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=")
    parts = [b"SET", key, val, b"EXAT", str(exp).encode()]
    out.write(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
PY
}
if [ "${BENCH_SCALING:-1}" = 1 ]; then
stop_service
rcli flushall >/dev/null
preload "$RPORT" 1000
start_redis
RPORT_LARGE=$RPORT_STARTED
preload "$RPORT_LARGE" "$PRELOAD"
SMALL_KEYS=$(rcli dbsize)
LARGE_KEYS=$(redis-cli -p "$RPORT_LARGE" dbsize)
start_service 1; SMALL=$BASE
start_service 1 "$RPORT_LARGE"; LARGE=$BASE
start_service 50; TENANTS_50=$BASE
for base in "$SMALL" "$LARGE" "$TENANTS_50"; do
  wrk -t"$THREADS" -c"$CONNECTIONS" -d1s -s "$WORK/create.lua" "$base/v1/invites" >/dev/null
done
for round in $(seq 0 $((ROUNDS - 1))); do
  BASE=$SMALL run_phase scale_small "$WORK/redeem_unlimited.lua" /v1/redeem
  BASE=$LARGE run_phase scale_large "$WORK/redeem_unlimited.lua" /v1/redeem
  BASE=$SMALL run_phase create_1 "$WORK/create.lua" /v1/invites
  BASE=$TENANTS_50 run_phase create_50 "$WORK/create.lua" /v1/invites
done
for phase in scale_small scale_large create_1 create_50; do median_round "$phase"; done
fi

# --- Report ----------------------------------------------------------------------------------
CPU=$(awk -F: '/model name/ {gsub(/^ +/, "", $2); print $2; exit}' /proc/cpuinfo)
echo
echo "invitetomedia benchmark — $(nproc) cores, ${CPU:-unknown CPU}, $(redis-server --version | awk '{print $3}'), $PROFILE build"
if [ -n "${BENCH_SERVICE_CPUS:-}${BENCH_CLIENT_CPUS:-}" ]; then
  WHERE="service on CPUs ${BENCH_SERVICE_CPUS:-any}, wrk and Redis on CPUs ${BENCH_CLIENT_CPUS:-any}"
else
  WHERE="client and server on the same cores"
fi
echo "wrk -t$THREADS -c$CONNECTIONS, $ROUNDS rounds of ${SECONDS_PER_PHASE}s per phase, $WHERE"
echo
printf '%-40s %8s %7s %7s %7s %8s  %s\n' phase "req/s" "p50 ms" "p99 ms" "vs hz" "non-2xx" "rounds: req/s, p99 ms"
# req/s, p50 and p99 are medians over the rounds; "vs hz" is the median over rounds of the
# round's req/s over that round's /healthz, so drift between rounds cancels out.
row() { # key label
  # shellcheck disable=SC2086 # one argument per number
  python3 - "$2" "${RPS[$1]}" "${P50[$1]}" "${P99[$1]}" "${NON2XX[$1]}" "${ROUND_RESULTS[healthz]}" ${ROUND_RESULTS[$1]} <<'PY'
import statistics, sys
label, (r, p50, p99, errors) = sys.argv[1], map(float, sys.argv[2:6])
ceiling = [float(x) for x in sys.argv[6].split()][0::5]
v = list(map(float, sys.argv[7:]))
ratio = statistics.median(a / b for a, b in zip(v[0::5], ceiling)) * 100
rounds = ", ".join(f"{v[i]:.0f} {v[i + 2] / 1000:.1f}" for i in range(0, len(v), 5))
print(f"{label:<40} {r:>8.0f} {p50 / 1000:>7.2f} {p99 / 1000:>7.2f} {ratio:>6.0f}% {errors:>8.0f}  {rounds}")
PY
}
row healthz "GET /healthz"
row create "POST /v1/invites"
row landing "GET /i/{token}"
row redeem_unlimited "POST /v1/redeem (unlimited, new device)"
row redeem_single "POST /v1/redeem (single-use links)"
row reentry_off "POST /v1/redeem (re-entry, $REENTRY_DEVICES uses)"
row reentry_on "  the same, RequireEmailCode"
echo
python3 -c 'import sys; r, p99 = map(float, sys.argv[1:]); print(f"GET /healthz with one wrk thread: {r:,.0f} req/s, p99 {p99 / 1000:.2f} ms")' "${RPS[healthz_t1]}" "${P99[healthz_t1]}"
python3 - "$PEAK_RSS" "$MEM_BEFORE" "$MEM_AFTER" "$REDEEMED" "$NEW_KEYS" "$LINKS" <<'PY'
import sys
rss, before, after, redeemed, keys, links = map(int, sys.argv[1:])
print(f"service peak RSS: {rss / 1024:.1f} MiB")
if redeemed:
    print(f"Redis per redeemed single-use link: {(after - before) / redeemed:.0f} bytes ({redeemed} redeemed of {links} links, {keys} new keys)")
PY
# Pairs: the median over rounds of the second's req/s over the first's in the same round.
pair() { # first second label-first label-second
  # shellcheck disable=SC2086 # one argument per number
  python3 - "$3" "$4" "${RPS[$1]}" "${RPS[$2]}" "${ROUND_RESULTS[$1]}" "${ROUND_RESULTS[$2]}" <<'PY'
import statistics, sys
a_label, b_label, a, b = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
a_rounds = [float(x) for x in sys.argv[5].split()][0::5]
b_rounds = [float(x) for x in sys.argv[6].split()][0::5]
change = (statistics.median(y / x for x, y in zip(a_rounds, b_rounds)) - 1) * 100
print(f"{a_label}: {a:,.0f} req/s; {b_label}: {b:,.0f} req/s ({change:+.1f}%, median of rounds)")
PY
}
thousands() { python3 -c 'import sys; print(f"{int(sys.argv[1]):,}")' "$1"; }
if [ "${BENCH_SCALING:-1}" = 1 ]; then
  pair scale_small scale_large "redeem with $(thousands "$SMALL_KEYS") live used links" "with $(thousands "$LARGE_KEYS")"
  pair create_1 create_50 "create with 1 tenant" "with 50 tenants"
fi
if [ "${BENCH_YIELD_PAIR:-0}" = 1 ]; then
  echo
  echo "server.yield_after_us: default ($(grep -o 'DEFAULT_YIELD_AFTER_US: u64 = [0-9]*' src/tuning.rs | awk '{print $NF}') µs) against 0 (p99: medians over rounds)"
  for p in healthz landing redeem; do
    pair "n_$p" "y_$p" "$p, yield_after_us = 0 (p99 $(python3 -c "print(f'{${P99[n_$p]} / 1000:.2f}')") ms)" "default (p99 $(python3 -c "print(f'{${P99[y_$p]} / 1000:.2f}')") ms)"
  done
fi
