#!/usr/bin/env bash
# A room of many native nodes through a real relay process (issue 30): builds the relay and
# node/examples/room.rs in release, then runs it. Arguments go to the example, e.g.
#   bash bench/room.sh --nodes 60,128,256 --blocks 20 --chain 500 --joiners 5
# Loopback only; each room size starts its own relay on a free port and stops it after.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p relay
cargo build --release --quiet -p node --example room
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
exec "$target_dir/release/examples/room" --relay "$target_dir/release/relay" "$@"
