#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what the tests need (redis-server),
# then runs fmt, clippy and every test. Tests start their own redis-server on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >/dev/null
fi
# Debian starts a redis-server service on install; the tests do not use it.

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
