#!/usr/bin/env bash
# Installs what tabchain needs beyond Rust and Node, pinned, and skips whatever is already present.
# Used by `cargo xtask test`, `cargo xtask run` and `.ci/run`; safe to run again.
#   scripts/install-tools.sh [wasm] [binaryen] [browser] [nats] [trunk]
# No argument = everything the tests need (all but trunk). The web app is built by
# `cargo xtask build-web` with the wasm-bindgen library, so neither the tests nor `cargo xtask run`
# compile a command-line tool; `trunk` (with the wasm-bindgen CLI it calls) is only for the
# hot-reload path `trunk serve` (docs/web.md) and is installed only when asked for.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130
TRUNK_VERSION=0.21.14
BINARYEN_VERSION=132

want() { [ $# -eq 0 ] && return 0; return 1; }
parts=("$@")
has_part() { [ ${#parts[@]} -eq 0 ] && [ "$1" != trunk ] && return 0; for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }
log() { echo "[install-tools] $*" >&2; }
# Debian's nats-server lands in /usr/sbin, which a non-login PATH may leave out.
export PATH="$PATH:/usr/sbin:/sbin"

if has_part wasm; then
  if ! rustup target list --installed | grep -q '^wasm32-unknown-unknown$'; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
fi

if has_part binaryen; then
  if ! [ -x tools/node_modules/.bin/wasm-opt ]; then
    log "installing wasm-opt from npm binaryen@$BINARYEN_VERSION"
    mkdir -p tools
    (cd tools && npm install --no-audit --no-fund --silent "binaryen@$BINARYEN_VERSION")
  fi
fi

if has_part browser; then
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    log "installing Debian's chromium and chromium-driver"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
  # The direct-link browser tests run in a network namespace (`unshare -n`, util-linux) and bring
  # its loopback up with `ip` (iproute2), which a minimal image may lack.
  if ! command -v ip >/dev/null && ! [ -x /usr/sbin/ip ] && ! [ -x /sbin/ip ]; then
    log "installing Debian's iproute2 (ip, for the network namespace of the WebRTC tests)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq iproute2 >/dev/null
  fi
  # The two-homes test (e2e/homes.sh) puts each home behind a source-NAT router made with nft.
  if ! command -v nft >/dev/null && ! [ -x /usr/sbin/nft ]; then
    log "installing Debian's nftables (nft, for the NAT routers of the two-homes test)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq nftables >/dev/null
  fi
fi

if has_part nats; then
  # The relay's fleet tests (relay/tests/fleet) start a real broker. Pinned by what Debian ships
  # (2.9.10 on bookworm); the package installs a service unit but the tests start their own.
  if ! command -v nats-server >/dev/null; then
    log "installing Debian's nats-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq nats-server >/dev/null
  fi
fi

if has_part trunk; then
  if ! trunk --version 2>/dev/null | grep -q " $TRUNK_VERSION"; then
    log "installing trunk $TRUNK_VERSION (about 8 minutes)"
    cargo install trunk --version "$TRUNK_VERSION" --locked --force
  fi
  # trunk calls the wasm-bindgen CLI, which must be the crate's version.
  if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION"; then
    log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 3 minutes)"
    # Its own lock file does not build on Rust 1.95, so no --locked here (see shared TOOLCHAIN.md).
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
  fi
fi
log "tools ready"
