#!/usr/bin/env bash
# Browser end-to-end suite: builds the one-file relay (`cargo xtask dist`: the web app inside),
# starts it on a free loopback port, and drives several headless Chromium tabs against it. The
# direct-link tests start the same binary with --static-dir, so both ways of serving are used.
# Called by `cargo xtask test`; needs the tools from scripts/install-tools.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"

if [ ! -d e2e/node_modules/playwright-core ] || [ ! -d e2e/node_modules/ws ]; then
  (cd e2e && npm install --no-audit --no-fund --silent)
fi

echo "[e2e] building the one-file relay (the web app inside, as \`cargo xtask run\` serves it)" >&2
cargo xtask dist
relay_bin="$target_dir/dist/tabchain-relay"
# The prepared chain file e2e/tests/classroom.test.js loads (500 blocks of the test network).
cargo build -p web --example chain_file --quiet

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
# No --static-dir: the suite tests the app inside the binary, the one people deploy.
"$relay_bin" --port "$port" >"$log" 2>&1 &
relay_pid=$!
trap 'kill "$relay_pid" 2>/dev/null || true; wait "$relay_pid" 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$relay_pid" 2>/dev/null; then cat "$log" >&2; echo "[e2e] relay exited" >&2; exit 1; fi
  sleep 0.1
done

export E2E_BASE="http://127.0.0.1:$port"
export E2E_VECTORS="$PWD/shared/test-vectors/vectors.json"
mkdir -p e2e/screenshots
status=0
# Two scenarios at a time: each has its own browser, profile and room, and most of a scenario is
# waiting for blocks and messages, so two fit on two cores (about 6 minutes instead of 13).
node --test --test-concurrency=2 --test-timeout=300000 e2e/tests/ || status=$?
if [ "$status" -ne 0 ]; then
  echo "[e2e] relay log:" >&2
  tail -50 "$log" >&2
fi

# Direct links (WebRTC) run in a network namespace of their own with only loopback up: there
# Chromium's ICE finds 127.0.0.1 and nothing else (in the host's namespace it would gather every
# interface and try outside hosts). The test starts, kills and restarts its own relay on a port
# of that namespace. `unshare -n` needs root (or CAP_SYS_ADMIN); without it, a user namespace
# (`unshare -rn`) gives the same, where the kernel allows unprivileged ones.
echo "[e2e] direct links (WebRTC), in a network namespace with only loopback" >&2
netns=(unshare -n)
if ! unshare -n true 2>/dev/null; then
  if unshare -rn true 2>/dev/null; then
    netns=(unshare -rn)
  else
    echo "[e2e] cannot make a network namespace (unshare -n or -rn): the direct-link tests need one" >&2
    exit 1
  fi
fi
"${netns[@]}" env \
  E2E_BASE="http://127.0.0.1:3030" \
  E2E_RELAY_BIN="$relay_bin" \
  E2E_STATIC_DIR="$PWD/dist" \
  bash -c 'ip link set lo up && exec node --test --test-concurrency=1 --test-timeout=300000 e2e/tests-rtc/' \
  || status=$?

# Two homes behind two NAT routers (network namespaces, nft): the relay's own STUN server lets
# their tabs link directly. Needs root; E2E_SKIP_HOMES=1 leaves it out where there is none.
if [ "${E2E_SKIP_HOMES:-}" = 1 ]; then
  echo "[e2e] two homes behind NAT routers: left out (E2E_SKIP_HOMES=1)" >&2
elif [ "$(id -u)" -ne 0 ]; then
  echo "[e2e] two homes behind NAT routers need root (ip netns, nft); run as root or set E2E_SKIP_HOMES=1" >&2
  status=1
else
  echo "[e2e] two homes behind NAT routers (network namespaces), direct links through the relay's STUN" >&2
  E2E_STATIC_DIR="$PWD/dist" e2e/homes.sh "$relay_bin" || status=$?
fi
exit "$status"
