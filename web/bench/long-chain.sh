#!/usr/bin/env bash
# A fresh tab syncing a long chain (BENCHMARKS.md, "A long chain"): builds the app, the relay and
# node/examples/serve_chain.rs in release, starts the relay and a native node serving a chain of
# N blocks of the test network, then web/bench/long-chain.mjs opens a tab in the room and times it.
#   bash web/bench/long-chain.sh [blocks, default 250000]
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
blocks="${1:-250000}"

bash scripts/install-tools.sh >&2
if [ ! -d e2e/node_modules/playwright-core ]; then (cd e2e && npm install --no-audit --no-fund --silent); fi
cargo xtask build-web >/dev/null 2>&1
cargo build --release --quiet -p relay --bin relay -p node --example serve_chain

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$target_dir/release/relay" --static-dir dist --port "$port" >"$work/relay.log" 2>&1 &
relay_pid=$!
mkfifo "$work/hold"
room="long-$$"
"$target_dir/release/examples/serve_chain" "$blocks" "ws://127.0.0.1:$port/ws/$room" <"$work/hold" >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
exec 3>"$work/hold"
trap 'exec 3>&-; kill $relay_pid $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 1200); do grep -q '^ready' "$work/server.out" 2>/dev/null && break; sleep 0.5; done
cat "$work/server.out" >&2
node web/bench/long-chain.mjs "http://127.0.0.1:$port" "$room" "$blocks"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(chromium --version 2>/dev/null)" >&2
