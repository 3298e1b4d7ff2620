#!/usr/bin/env bash
# Direct links against the relay (BENCHMARKS.md, "Direct links"): builds the release app and the
# relay, then, in a network namespace with only loopback (`unshare -n`, needs root), starts the
# relay and drives headless Chromium tabs (web/bench/links.mjs): round trips, a block's time to
# reach 8 tabs, and relay bytes per block, relayed and direct side by side. Also prints the
# bundle sizes.
#   bash web/bench/links.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"

bash scripts/install-tools.sh >&2
if [ ! -d e2e/node_modules/playwright-core ]; then (cd e2e && npm install --no-audit --no-fund --silent); fi
cargo xtask build-web >/dev/null 2>&1
cargo build --release --quiet -p relay --bin relay

echo "| file | gzip -9 bytes |"
echo "|---|---|"
for file in dist/*.wasm dist/*.js; do
  echo "| $(basename "$file") | $(gzip -9 -c "$file" | wc -c) |"
done
echo

unshare -n env RELAY="$target_dir/release/relay" DIST="$PWD/dist" E2E_BASE="http://127.0.0.1:3030" bash -c '
  set -euo pipefail
  ip link set lo up
  "$RELAY" --static-dir "$DIST" --port 3030 >/tmp/tabchain-bench-relay.log 2>&1 &
  relay=$!
  trap "kill $relay 2>/dev/null || true" EXIT
  for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:3030/healthz >/dev/null 2>&1 && break; sleep 0.1; done
  node web/bench/links.mjs
'
echo
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(chromium --version 2>/dev/null)" >&2
