#!/bin/sh
# Installs skiffd as a systemd service from contrib/systemd/skiffd.service.
#
#   scripts/install-systemd.sh [--unit-dir DIR] [--no-reload] [--enable]
#
# Writes DIR/skiffd.service (default /etc/systemd/system) with ExecStart pointing at this
# checkout's built daemon (dist/src/daemon/main.js, run `npm run build` first) and the node on
# PATH, creates /etc/skiff/skiffd.toml if there is none (empty: the embedded default), then runs
# `systemctl daemon-reload` (unless --no-reload) and `systemctl enable --now skiffd` (with --enable).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
unit_dir=/etc/systemd/system
reload=1
enable=0
while [ $# -gt 0 ]; do
  case "$1" in
    --unit-dir) unit_dir=$2; shift 2 ;;
    --no-reload) reload=0; shift ;;
    --enable) enable=1; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-systemd.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

skiffd="$root/dist/src/daemon/main.js"
notify="$root/native/build/skiff-notify"
for f in "$skiffd" "$notify"; do
  [ -e "$f" ] || { echo "install-systemd.sh: $f is missing: run npm run build" >&2; exit 1; }
done
node=$(command -v node) || { echo "install-systemd.sh: node is not on PATH" >&2; exit 1; }

mkdir -p "$unit_dir"
tmp="$unit_dir/.skiffd.service.$$"
sed -e "s|@NODE@|$node|g" -e "s|@SKIFFD@|$skiffd|g" -e "s|@DOCS@|$root/docs|g" \
  "$root/contrib/systemd/skiffd.service" > "$tmp"
mv "$tmp" "$unit_dir/skiffd.service"
echo "installed $unit_dir/skiffd.service"

if [ "$unit_dir" = /etc/systemd/system ] && [ ! -e /etc/skiff/skiffd.toml ]; then
  mkdir -p /etc/skiff
  printf '# skiffd configuration (README.md, "Configuration"); empty: the embedded default.\n' > /etc/skiff/skiffd.toml
  echo "created /etc/skiff/skiffd.toml"
fi
if [ "$reload" = 1 ]; then systemctl daemon-reload; fi
if [ "$enable" = 1 ]; then systemctl enable --now skiffd.service; fi
