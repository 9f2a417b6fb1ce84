#!/usr/bin/env bash
# SV-2a on one node through the plan runner: a fresh node, LINES generated lines loaded
# through `load`, then `bench run SV-2a --target` (the runner finds the data already there),
# the node's peak RSS and its data on disk. The run is recorded in ./sv-runs for `report`.
# Usage: scripts/bench-sv2a.sh [LINES]   (default 1000000)
# Release build only: figures from debug builds mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
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
# Text and SQL only, as SV-2a measures them.
"$bin" load --topic thunderbird --format thunderbird --vector false --no-progress --target "$url" "$work/tb.log"
echo "node peak RSS after the load: $(awk '/VmHWM/{printf "%.0f MB", $2/1024}' /proc/$server/status)"
"$bin" bench run SV-2a --target "$url" --reuse-data --no-progress || true
du -sh "$work/data" | awk '{print "data on disk: " $1}'
