#!/usr/bin/env bash
# Browser benchmark of the web app (BENCHMARKS.md, "Browser node"). Builds the app and the relay in
# release, writes a 10,000-block test chain, starts the relay and a scripted peer serving that chain
# on 127.0.0.1, measures the native miner, then drives headless Chromium (web/bench/bench.mjs).
#   bash web/bench/run.sh [chain length, default 10000]
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
blocks="${1:-10000}"

bash scripts/install-tools.sh >&2
if [ ! -d e2e/node_modules/playwright-core ]; then (cd e2e && npm install --no-audit --no-fund --silent); fi
cargo xtask build-web >/dev/null 2>&1
cargo build --release --quiet -p relay --bin relay -p web --example long_chain -p node --example hashrate

work=$(mktemp -d)
"$target_dir/release/examples/long_chain" "$blocks" "$work/chain.json" 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$target_dir/release/relay" --static-dir dist --port "$port" >"$work/relay.log" 2>&1 &
relay_pid=$!
server_pid=
trap 'kill $relay_pid $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
room="bench-chain-$$"
node --experimental-websocket --no-warnings web/bench/serve-chain.js "$work/chain.json" "ws://127.0.0.1:$port/ws/$room" >&2 &
server_pid=$!

native() {
  "$target_dir/release/examples/hashrate" --seconds 3 --blocks 50 | sed -n 's/^| miner, 1 thread | \([0-9.]*\) MH\/s |$/\1/p' \
    | awk '{ printf "%.0f", $1 * 1e6 }'
}
before=$(native)
echo "native miner before: $before H/s" >&2
table=$(node web/bench/bench.mjs "http://127.0.0.1:$port" "$room" "$blocks" "$before" "$(native)")
echo "$table"
echo >&2
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(chromium --version 2>/dev/null)" >&2
