#!/usr/bin/env bash
# SV-2a on one node: load rate (end to end, until searchable), peak RSS, query latencies.
# Usage: scripts/bench-sv2a.sh [LINES] [ITERATIONS]   (defaults 1000000 and 20)
# Release build only: figures from debug builds mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
iterations=${2:-20}
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/sv-appliance
work=$(mktemp -d "${TMPDIR:-/tmp}/sv-bench.XXXXXX")
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
echo "generating $lines lines"
"$bin" gen thunderbird --lines "$lines" --seed 7 -o "$work/tb.log"
ls -l "$work/tb.log" | awk '{printf "input: %.1f MB\n", $5/1e6}'

"$bin" serve --data-dir "$work/data" --listen 127.0.0.1:0 2>"$work/serve.log" &
server=$!
for _ in $(seq 1 100); do
  url=$(grep -o 'http://[0-9.:]*' "$work/serve.log" | head -1 || true)
  [ -n "$url" ] && break
  sleep 0.1
done
echo "node: $url (pid $server)"
# Text and SQL only, as SV-2a measures them; SV-2b (`bench sv2b`) measures vectors.
"$bin" load --topic thunderbird --format thunderbird --vector false --no-progress --target "$url" "$work/tb.log"
echo "node peak RSS: $(awk '/VmHWM/{printf "%.0f MB", $2/1024}' /proc/$server/status)"
"$bin" bench sv2a --target "$url" --iterations "$iterations"
du -sh "$work/data" | awk '{print "data on disk: " $1}'
