#!/usr/bin/env bash
# The test command from README.md: builds what it needs and runs every test once.
set -euo pipefail
cd "$(dirname "$0")/.."
# One build profile (dev/test) for the whole run; nextest when present for parallel isolation.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi
