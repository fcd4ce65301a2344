#!/usr/bin/env bash
# Over-use window of a Redis failover: how many devices a single-use link admits beyond its limit
# when the Redis primary dies under load and its (asynchronous) replica takes over.
#
# Per trial: a Redis primary and a replica (in memory, noeviction) on free ports; the service on
# the primary with fixed signing keys; LINKS single-use links of the demo tenant; CLIENTS
# concurrent clients redeem each link once (device "a-<i>-..."). Once a third of the links are
# granted the client SIGKILLs the primary; this script promotes the replica (REPLICAOF NO ONE),
# stops the service (SIGTERM) and starts it again on the same port, pointed at the replica. The
# clients retry 503s and refused connections until every link is answered; then every link that
# was granted by the old instance (answered 200 before the kill, or just after it while the old
# instance still answered) is redeemed again with a second device ("b-<i>-..."). Each 200 there
# is a device admitted beyond the link's limit: the over-use.
#
# Two variants: "live" kills the primary under full load (the loss is the replication lag at
# that moment); "settled" pauses the clients, waits until the replica's offset equals the
# primary's, then kills (nothing should be lost). Prints one line per trial and a summary.
#
# Scope: one host, loopback, the Redis *process* is killed. Bytes Redis already wrote to the
# replica's socket survive the process, so this measures the floor of the window; losing the
# primary's machine or network (unsent buffers, packets in flight, a partitioned primary still
# taking writes) is not modelled. The switch here is scripted (no Sentinel detection delay).
#
#   bash tests/load/failover.sh          # 20 live + 20 settled trials (about 4 minutes)
#   FAILOVER_TRIALS=3 FAILOVER_SETTLED_TRIALS=1 FAILOVER_LINKS=600 bash tests/load/failover.sh
#
# FAILOVER_BIN: the service binary (default target/debug/invitetomedia; this script never
# builds: run `cargo build` first). Needs redis-server, redis-cli, curl, ss
# and python3 (standard library only). Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."   # the service reads config/default.toml from here

TRIALS=${FAILOVER_TRIALS:-20}
SETTLED_TRIALS=${FAILOVER_SETTLED_TRIALS:-20}
LINKS=${FAILOVER_LINKS:-2000}
CLIENTS=${FAILOVER_CLIENTS:-32}
BIN=${FAILOVER_BIN:-target/debug/invitetomedia}

die() { echo "failover: $*" >&2; exit 1; }
for tool in redis-server redis-cli curl ss python3; do command -v "$tool" >/dev/null || die "$tool is required"; done
[ -x "$BIN" ] || die "no service binary at $BIN"

ROOT=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Fixed keys, so links created before the failover verify after the restart.
INVITE_SECRET=$(python3 -c 'import secrets,string; print("".join(secrets.choice(string.ascii_letters+string.digits) for _ in range(64)))')
"$BIN" keygen --alg EdDSA > "$ROOT/grant.pem" || die "keygen failed"

write_config() { # $1 file, $2 service port, $3 Redis port
  cat > "$1" <<EOF
[server]
port = $2
public_base_url = "http://127.0.0.1:$2"
shutdown_timeout_seconds = 2
[store]
backend = "redis"
redis_url = "redis://127.0.0.1:$3"
[keys]
invite = [ { kid = "i1", alg = "HS256", secret = "$INVITE_SECRET" } ]
grant = [ { kid = "g1", alg = "EdDSA", private_key_pem = """
$(cat "$ROOT/grant.pem")
""" } ]
EOF
}

wait_for() { # $1 seconds, then a command; polls every 50 ms
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.05; done
}
link_up() { redis-cli -p "$1" INFO replication | grep -q '^master_link_status:up'; }
# The machine may be shared: make sure what answers on a port is the process started here.
listens() { ss -Hltnp "sport = :$1" | grep -q "pid=$2,"; } # $1 port, $2 pid
start_service() { # $1 config, $2 port, $3 log; sets SVC; fails when it does not come up
  RUST_LOG=warn INVITETOMEDIA_CONFIG="$1" "$BIN" >> "$3" 2>&1 &
  SVC=$!; PIDS+=("$SVC")
  wait_for 30 curl -fsS "http://127.0.0.1:$2/healthz" && listens "$2" "$SVC" && return 0
  tail -n 3 "$3" >&2; stop "$SVC"; return 1
}
stop() { # $1 pid: SIGTERM, SIGKILL after 10 s
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 1 200); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true
}

# --- The client: creates the links, redeems them, kills the primary, then the second devices ---
cat > "$ROOT/client.py" <<'PY'
import http.client, json, os, signal, subprocess, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
port, links, clients, mode, primary_pid, pport, rport, work = sys.argv[1:9]
port, links, clients, primary_pid, pport, rport = map(int, (port, links, clients, primary_pid, pport, rport))
EMAIL, tls, lock = "ada@example.com", threading.local(), threading.Lock()
go = threading.Event(); go.set()            # cleared while the settled variant waits
state = {"killed": False, "granted": 0, "active": 0, "n503": 0, "nconn": 0, "reentry": 0}

def post(path, body, auth=False):
    """One POST on this thread's keep-alive connection: (status, body), or (None, b"") on a socket error."""
    c = getattr(tls, "c", None) or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    tls.c = c
    h = {"Content-Type": "application/json"}
    if auth: h["Authorization"] = "Bearer demo-api-key"
    try:
        c.request("POST", path, json.dumps(body), h); r = c.getresponse(); return r.status, r.read()
    except (OSError, http.client.HTTPException):
        c.close(); tls.c = None; return None, b""

def info(p):
    out = subprocess.run(["redis-cli", "-p", str(p), "INFO", "replication"], capture_output=True, text=True).stdout
    return dict(l.strip().split(":", 1) for l in out.splitlines() if ":" in l)

def kill_primary():
    if mode == "settled":                   # stop sending, let in-flight requests finish, let the replica catch up
        with lock: go.clear()
        while state["active"]: time.sleep(0.001)
        end = time.time() + 5
        while info(pport)["master_repl_offset"] != info(rport).get("slave_repl_offset") and time.time() < end:
            time.sleep(0.01)
    state["killed"] = time.time()           # before the signal: a 200 seen while unset came before it
    os.kill(primary_pid, signal.SIGKILL)
    open(os.path.join(work, "killed"), "w").close()
    go.set()

# 1. Create the links (no store involved).
def create(i):
    body = {"media": {"id": f"1_m{i}", "type": "room", "title": "Failover"},
            "inviter": {"id": "prof1", "name": "Prof One", "role": "privateOnlyRole", "groups": ["faculty"], "permission": "owner"},
            "invitee": {"email": EMAIL, "first_name": "Ada", "last_name": "Lovelace", "role": "speaker"},
            "duration_minutes": 60}
    st, data = post("/v1/invites", body, auth=True)
    if st != 201: sys.exit(f"create answered {st}: {data[:200]!r}")
    return json.loads(data)["token"]
with ThreadPoolExecutor(clients) as ex: tokens = list(ex.map(create, range(links)))

# 2. Redeem each link once with device a-<i>, retrying 503s and socket errors (the switch).
def redeem(i, dev, deadline):
    while True:
        while True:                          # counted as active only while sending is allowed
            with lock:
                if go.is_set(): state["active"] += 1; break
            go.wait()
        st, data = post("/v1/redeem", {"token": tokens[i], "email": EMAIL, "device_id": f"{dev}-{i}-xxxxxxxxxxxx"})
        with lock:
            state["active"] -= 1
            if st == 200 and json.loads(data)["reentry"]: state["reentry"] += 1   # claimed, but its answer was lost
        if st in (None, 503) and time.time() < deadline:
            with lock: state["n503" if st == 503 else "nconn"] += 1
            time.sleep(0.02); continue
        return st

result = {}                                  # link -> (status, "pre" | "inflight" | "post")
def first(i):
    st = redeem(i, "a", time.time() + 60)
    when = "pre" if not state["killed"] else "inflight" if not os.path.exists(os.path.join(work, "stopped")) else "post"
    result[i] = (st, when)
    if st == 200 and when == "post": state.setdefault("back", time.time())
    if st == 200:
        with lock:
            state["granted"] += 1
            trigger = state["granted"] == links // 3
        if trigger: kill_primary()
t0 = time.time()
with ThreadPoolExecutor(clients) as ex: list(ex.map(first, range(links)))
end = time.time() + 60
while not os.path.exists(os.path.join(work, "restarted")):
    if time.time() > end: sys.exit("the service was not restarted")
    time.sleep(0.02)

# 3. Every link the old instance granted, again with a second device: a 200 is over-use.
again = [i for i, (st, when) in result.items() if st == 200 and when != "post"]
second = {}
def other(i): second[i] = redeem(i, "b", time.time() + 60)
with ThreadPoolExecutor(clients) as ex: list(ex.map(other, again))
count = lambda d: {str(k): list(d.values()).count(k) for k in sorted(set(d.values()), key=str)}
out = {
    "granted_pre": sum(1 for st, w in result.values() if st == 200 and w == "pre"),
    "granted_inflight": sum(1 for st, w in result.values() if st == 200 and w == "inflight"),
    "overuse": sum(1 for s in second.values() if s == 200),
    "overuse_inflight": sum(1 for i, s in second.items() if s == 200 and result[i][1] == "inflight"),
    "first": count({i: s for i, (s, _) in result.items()}), "second": count(second),
    "n503": state["n503"], "nconn": state["nconn"], "reentry": state["reentry"], "seconds": round(time.time() - t0, 2),
    "switch_s": round(state.get("back", time.time()) - state["killed"], 2),   # kill -> first grant on the replica
    # claims the promoted replica holds (one key per used link, nothing else is written here)
    "replica_keys": int(open(os.path.join(work, "replica_keys")).read())}
print(json.dumps(out))
PY

# --- Per-trial line and summary ---------------------------------------------------------------
cat > "$ROOT/report.py" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[2])]
if sys.argv[1] == "line":
    print("{0:>7} {1:>3}  granted before kill {granted_pre:5d} (+{granted_inflight:2d} in flight)  over-use {overuse:3d} ({overuse_inflight} in flight)"
          "  replica keys {replica_keys:5d}  switch {switch_s:4.2f} s  503s {n503:4d}  refused {nconn:4d}  re-entries {reentry}  second devices {second}  {seconds} s"
          .format(sys.argv[3], len(rows), **rows[-1]))
else:
    o = [r["overuse"] for r in rows]; g = [r["granted_pre"] + r["granted_inflight"] for r in rows]
    extra = [r["replica_keys"] - gi for gi, r in zip(g, rows)]
    print(f"{sys.argv[3]}: {len(rows)} trials; over-use per failover min {min(o)} / median {statistics.median(o):g} / max {max(o)};"
          f" in all {sum(o)} of {sum(g)} grants made before the kill ({100 * sum(o) / sum(g):.2f}%);"
          f" grants before the kill per trial median {statistics.median(g):g} (of which in flight: median"
          f" {statistics.median(r['granted_inflight'] for r in rows):g}); promoted replica's keys minus those grants"
          f" per trial min {min(extra)} / max {max(extra)}; first-device re-entries in all {sum(r['reentry'] for r in rows)};"
          f" switch (kill to first grant on the replica) median {statistics.median(r['switch_s'] for r in rows):g} s;"
          f" 503s per trial median {statistics.median(r['n503'] for r in rows):g}")
PY

# --- One trial: setup (primary, replica, service) on new free ports, then the failover ---------
setup() { # sets P R S PRIMARY REPLICA SVC (variables of trial); returns 1, all stopped, on failure
  read -r P R S < <(python3 -c 'import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
  local opts=(--bind 127.0.0.1 --save "" --appendonly no --maxmemory-policy noeviction --daemonize no)
  redis-server --port "$P" "${opts[@]}" --logfile "$W/primary.log" & PRIMARY=$!; PIDS+=("$PRIMARY")
  disown "$PRIMARY"                       # no "Killed" notice later; bash still reaps it
  redis-server --port "$R" "${opts[@]}" --replicaof 127.0.0.1 "$P" --logfile "$W/replica.log" & REPLICA=$!; PIDS+=("$REPLICA")
  if ! { wait_for 10 listens "$P" "$PRIMARY" && wait_for 10 listens "$R" "$REPLICA" && wait_for 20 link_up "$R"; }; then
    tail -n 3 "$W/primary.log" "$W/replica.log" >&2; kill -9 "$PRIMARY" 2>/dev/null; stop "$REPLICA"; return 1
  fi
  write_config "$W/primary.toml" "$S" "$P"
  write_config "$W/replica.toml" "$S" "$R"
  start_service "$W/primary.toml" "$S" "$W/service.log" || { kill -9 "$PRIMARY" 2>/dev/null; stop "$REPLICA"; return 1; }
}

# --- One trial --------------------------------------------------------------------------------
trial() { # $1 variant, $2 trial number; appends one JSON line to $ROOT/$1.jsonl
  local W="$ROOT/$1-$2" P R S PRIMARY REPLICA CLIENT attempt
  mkdir -p "$W"
  for attempt in 1 2 3; do                # new ports when another process took one meanwhile
    [ "$attempt" = 1 ] || echo "failover: setup attempt $attempt" >&2
    setup && break
    [ "$attempt" = 3 ] && die "trial $2: setup failed 3 times"
  done

  python3 "$ROOT/client.py" "$S" "$LINKS" "$CLIENTS" "$1" "$PRIMARY" "$P" "$R" "$W" > "$W/out.json" & CLIENT=$!; PIDS+=("$CLIENT")
  wait_for 120 eval '[ -e "$W/killed" ] || ! kill -0 "$CLIENT"'
  [ -e "$W/killed" ] || die "trial $2: the client never killed the primary"
  wait_for 5 eval '! kill -0 "$PRIMARY"' || die "the primary survived SIGKILL"   # SIGKILLed by the client
  redis-cli -p "$R" DBSIZE > "$W/replica_keys"
  [ "$(redis-cli -p "$R" REPLICAOF NO ONE | tr -d '\r')" = OK ] || die "REPLICAOF NO ONE failed"
  stop "$SVC"; touch "$W/stopped"
  start_service "$W/replica.toml" "$S" "$W/service.log" || die "trial $2: the restarted service did not come up"
  touch "$W/restarted"
  wait "$CLIENT" || die "trial $2: the client failed"
  cat "$W/out.json" >> "$ROOT/$1.jsonl"
  stop "$SVC"; stop "$REPLICA"
  PIDS=()                                                               # all reaped
  python3 "$ROOT/report.py" line "$ROOT/$1.jsonl" "$1"
}

echo "failover: $(nproc) cores, $(redis-server --version | cut -d' ' -f3), $LINKS single-use links per trial, $CLIENTS clients"
for i in $(seq 1 "$TRIALS"); do trial live "$i"; done
for i in $(seq 1 "$SETTLED_TRIALS"); do trial settled "$i"; done
[ "$TRIALS" -gt 0 ] && python3 "$ROOT/report.py" summary "$ROOT/live.jsonl" live
[ "$SETTLED_TRIALS" -gt 0 ] && python3 "$ROOT/report.py" summary "$ROOT/settled.jsonl" settled
echo "failover: done in ${SECONDS} s"
