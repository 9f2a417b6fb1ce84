#!/usr/bin/env bash
# The test command from README.md: builds what it needs and runs every test once.
set -euo pipefail
cd "$(dirname "$0")/.."
# The deployment tests run real OpenSSH servers and check the systemd unit with
# systemd-analyze; the report test renders pages in headless Chromium: install what is
# missing (Debian packages).
missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v systemd-analyze >/dev/null || missing+=(systemd)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" ||
      { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
  else
    echo "the tests need: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
# One build profile (dev/test) for the whole run; nextest when present for parallel isolation.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi
