#!/usr/bin/env bash
# What the qrcode crate adds to a wasm module: the probe built with and without it
# (opt-level z, LTO, wasm-opt -Oz), gzip -9 of each. Needs wasm-opt on PATH (tools/).
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
out=$(mktemp -d)
for variant in without with; do
  features=()
  [ "$variant" = with ] && features=(--features qr)
  cargo build --release --target wasm32-unknown-unknown -q "${features[@]}"
  wasm-opt -Oz --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
    --enable-mutable-globals "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/qrsize.wasm" -o "$out/$variant.wasm"
  echo "$variant qrcode: $(gzip -9 -c "$out/$variant.wasm" | wc -c) bytes gzipped"
done
