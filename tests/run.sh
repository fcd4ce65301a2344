#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what the tests need (redis-server),
# then runs fmt, clippy and every test. Tests start their own redis-server on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages the tests need: redis-server (tests start their own on free ports), Chromium
# and Node.js for the browser test, wrk for the benchmark's smoke run. Debian starts a redis service on install; tests ignore it.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Japanese and Chinese glyphs for the browser test's screenshots (a participant's device has its
# own fonts; without these the screenshots show boxes, and no check depends on them).
if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=ja 2>/dev/null)" ]; then
  { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq fonts-ipafont-gothic fonts-wqy-zenhei >/dev/null; } \
    || echo "CJK fonts not installed: screenshots of ja and zh pages will show boxes"
fi
# Playwright's driver only (no browser download): it drives Debian's /usr/bin/chromium.
npm ci --prefix tests/e2e --no-audit --no-fund --silent

# Kubernetes manifests, strictly, against the current Kubernetes version (kubernetes-validate
# from PyPI, in a virtualenv under target/ so the system Python is left alone).
if [ ! -x target/py/bin/kubernetes-validate ]; then
  python3 -m venv target/py 2>/dev/null || {
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv target/py
  }
  target/py/bin/pip install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
fi
# The reference grant verifiers of examples/ (tests/api/verifiers.rs runs them): PyJWT in the same
# virtualenv, jose from npm.
if ! target/py/bin/python -c 'import jwt, cryptography' 2>/dev/null; then
  target/py/bin/pip install --quiet --disable-pip-version-check pyjwt==2.15.1 cryptography==50.0.2
fi
npm ci --prefix examples/node --no-audit --no-fund --silent
# schemathesis, pinned, for the contract run of openapi.yaml (tests/contract/run.sh).
if ! target/py/bin/st --version 2>/dev/null | grep -q '4.32.5'; then
  target/py/bin/pip install --quiet --disable-pip-version-check schemathesis==4.32.5
fi
target/py/bin/kubernetes-validate --strict --quiet -k 1.37.0 \
  $(ls k8s/base/*.yaml | grep -v kustomization.yaml) k8s/secret.example.yaml

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
# openapi.yaml against the real service: every phase, every check, zero failures.
bash tests/contract/run.sh
# The benchmark, for a second per phase on the debug build, so the script cannot rot. The real
# run is `bash tests/load/bench.sh` (release build, see README "Performance").
BENCH_SECONDS=1 BENCH_QUICK=1 bash tests/load/bench.sh
# Reloads under load, the same way: a second per run on the debug build; it fails if a reload
# fails a request or is refused.
RELOAD_PROFILE=debug RELOAD_SECONDS=1 bash tests/load/reload.sh
