#!/usr/bin/env bash
# Builds the fully static binary (x86_64-unknown-linux-musl, `dist` profile: thin LTO,
# stripped) and reports its size, what `file` says, and its cold start time.
# Takes 18-30 min from clean on a 2-core machine; not part of CI (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
if ! rustup target list --installed | grep -qx "$target"; then
  rustup target add "$target"
fi
if ! command -v musl-gcc >/dev/null; then
  # The C parts (zstd, lzma, mimalloc, aws-lc) are compiled with musl-gcc.
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y --no-install-recommends musl-tools
  else
    echo "musl-gcc is missing: install Debian's musl-tools (sudo apt-get install musl-tools)" >&2
    exit 1
  fi
fi
cargo build --profile dist --target "$target" --bin sv-appliance
bin="target/$target/dist/sv-appliance"
echo "built $bin"
file "$bin"
if ! file "$bin" | grep -q "static"; then
  echo "$bin is not statically linked" >&2
  exit 1
fi
ls -l "$bin" | awk '{printf "size: %d bytes (%.1f MB)\n", $5, $5/1e6}'
# Cold start: from exec to the API answering /health, fresh data directory, embedding off.
data=$(mktemp -d)
port=$((20000 + RANDOM % 10000))
start=$(date +%s.%N)
SV_EMBEDDING_PROVIDER=none "$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" >"$data/log" 2>&1 &
pid=$!
until curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 || ! kill -0 $pid 2>/dev/null; do sleep 0.01; done
end=$(date +%s.%N)
kill $pid; wait $pid 2>/dev/null || true
rm -rf "$data"
echo "cold start to /health: $(echo "($end - $start) * 1000" | bc) ms"
