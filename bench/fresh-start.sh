#!/usr/bin/env bash
# Times a newcomer's first `cargo xtask run`: a fresh clone of this repository, an empty home and
# cargo home (so every crate is downloaded from crates.io and compiled, and no tool is already
# installed), as on a machine that has only Rust, the wasm target and Node. Prints each step's seconds and the seconds until the page is
# served, then stops the relay. Then times a second, warm `cargo xtask run` in the same clone.
#
#   bash bench/fresh-start.sh [COMMIT]      (default: HEAD; results go in BENCHMARKS.md)
#
# It needs nothing installed beyond what `cargo xtask run` installs; it leaves the clone and the
# cargo home in a temporary folder it removes at the end. Only 127.0.0.1 is used.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
commit="${1:-HEAD}"
work="$(mktemp -d /tmp/tabchain-fresh-XXXXXX)"
trap 'pkill -f -- "--port ${port:-none}" 2>/dev/null || true; rm -rf "$work"' EXIT

git clone --quiet "$repo" "$work/clone"
git -C "$work/clone" checkout --quiet "$commit"
# A newcomer's machine: an empty home (no cargo registry, no installed tools such as trunk, no
# npm cache), the one Rust toolchain (rustup's, through its proxies) and Node. The clone starts
# with no tools/ folder, so wasm-opt comes from npm again.
real_home="$HOME"
export RUSTUP_HOME="${RUSTUP_HOME:-$real_home/.rustup}"
export HOME="$work/home"
export CARGO_HOME="$HOME/.cargo"
mkdir -p "$CARGO_HOME/bin" "$work/bin"
for tool in cargo rustc rustdoc rustup rustfmt cargo-fmt cargo-clippy clippy-driver; do
  ln -s "$real_home/.cargo/bin/$tool" "$work/bin/$tool"
done
export PATH="$CARGO_HOME/bin:$work/bin:$(dirname "$(command -v node)"):/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
unset CARGO_TARGET_DIR

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

timed_run() {
  local label="$1" log="$work/$1.log"
  local started
  started=$(date +%s.%N)
  # Every line stamped with the seconds since the start, so the time before xtask's first line
  # (downloading crates and compiling xtask itself) is measured too.
  (cd "$work/clone" && exec cargo xtask run --port "$port") 2>&1 \
    | python3 -u -c "
import sys, time
t0 = $started
for line in sys.stdin:
    sys.stdout.write('%7.1f %s' % (time.time() - t0, line))
" >"$log" &
  run_pid=$!
  until curl -fsS "http://127.0.0.1:$port/" 2>/dev/null | grep -q '_bg.wasm'; do
    if ! kill -0 "$run_pid" 2>/dev/null; then
      tail -30 "$log" >&2
      echo "[fresh-start] cargo xtask run exited before serving the page" >&2
      exit 1
    fi
    sleep 1
  done
  local served
  served=$(python3 -c "print(round($(date +%s.%N) - $started))")
  echo "== $label: page served after $served s"
  # Before xtask's first line: cargo downloading crates and compiling xtask. Then each step.
  awk 'NR==1{printf "   %5.0f s  download crates, compile xtask\n", $1}
       / ==> /{title=$0; sub(/^ *[0-9.]+ ==> /, "", title); sub(/: .*/, "", title)}
       $2 == "done" && $3 == "in" {printf "   %5s s  %s\n", $4, title}
       $3 == "wasm-opt" && $5 == "done" {printf "   %5s s  (wasm-opt %s, beside the next step)\n", $7, $4}' "$log"
  # xtask and the relay it started both carry "--port $port" on their command lines.
  pkill -f -- "--port $port" 2>/dev/null || true
  wait "$run_pid" 2>/dev/null || true
  sleep 1
}

echo "[fresh-start] commit $(git -C "$work/clone" rev-parse --short HEAD), $(nproc) cores, empty home and cargo home"
timed_run cold
timed_run warm
