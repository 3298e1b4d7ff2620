#!/usr/bin/env bash
# A tab in the background (BENCHMARKS.md): builds the release app and the relay, starts the
# relay, and runs web/bench/background.mjs in a headful Chromium inside Xvfb (headless Chromium
# never hides a tab). Needs Debian's xvfb (installed here if missing; a benchmark tool, not one
# the test suite needs).
#   bash web/bench/background.sh            # hidden phases of 60 s
#   HIDDEN_S=400 bash web/bench/background.sh   # past Chromium's 5-minute intensive throttling
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"

bash scripts/install-tools.sh >&2
if ! command -v xvfb-run >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get install -y --no-install-recommends xvfb xauth >&2
fi
if [ ! -d e2e/node_modules/playwright-core ]; then (cd e2e && npm install --no-audit --no-fund --silent); fi
cargo xtask build-web >/dev/null 2>&1
cargo build --release --quiet -p relay --bin relay

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$target_dir/release/relay" --static-dir dist --port "$port" >/tmp/tabchain-bench-bg-relay.log 2>&1 &
relay=$!
trap 'kill $relay 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
E2E_BASE="http://127.0.0.1:$port" xvfb-run -a node web/bench/background.mjs
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(chromium --version 2>/dev/null)" >&2
