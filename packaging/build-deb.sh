#!/usr/bin/env bash
# Builds the .deb: the static binary (packaging/build-static.sh), the systemd unit, a commented
# config, the environment file and a system user. Prints `dpkg-deb --info` and `--contents`.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
packaging/build-static.sh
if ! cargo deb --version >/dev/null 2>&1; then
  cargo install cargo-deb --locked
fi
# The unit and config as installed by the package: binary in /usr/bin, data in /var/lib.
out=target/packaging
mkdir -p "$out"
sed -e 's#@BINARY@#/usr/bin/sv-appliance#g' \
    -e 's#@CONFIG@#/etc/sv-appliance/node.toml#g' \
    -e 's#@ENV_FILE@#/etc/default/sv-appliance#g' \
    -e 's#@STATE_DIR@#/var/lib/sv-appliance#g' \
    systemd/sv-appliance.service > "$out/sv-appliance.service"
sed -e 's#^data_dir = .*#data_dir = "/var/lib/sv-appliance/data"#' \
    configs/default.toml > "$out/node.toml"
if command -v systemd-analyze >/dev/null; then
  # verify wants ExecStart to exist: check a copy pointing at the built binary.
  mkdir -p "$out/verify"
  sed -e "s#/usr/bin/sv-appliance#$PWD/target/$target/dist/sv-appliance#g" \
      "$out/sv-appliance.service" > "$out/verify/sv-appliance.service"
  systemd-analyze verify "$out/verify/sv-appliance.service"
fi
cargo deb --no-build --no-strip --target "$target" --profile dist --output "$out/"
deb=$(ls -t "$out"/*.deb | head -1)
dpkg-deb --info "$deb"
dpkg-deb --contents "$deb"
echo "package: $deb"
