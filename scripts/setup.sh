#!/usr/bin/env bash
# Installs everything Skiff needs on Debian 12 as root: Debian packages, npm dependencies, the
# build (TypeScript and the native monitor/init) and the example packages.
# `scripts/setup.sh --run` then starts skiffd on its embedded default configuration.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: run as root (Skiff manages mounts, cgroups and containers)" >&2
  exit 1
fi
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "setup.sh: Node.js 20 or newer is required" >&2
  exit 1
fi

packages=$(grep -v '^#' scripts/debian-packages.txt | xargs)
missing=$(for p in $packages; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
if [ -n "$missing" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
examples/build.sh
# The embedded default configuration's repository: the daemon finds the examples there.
mkdir -p /var/lib/skiff/repository
cp examples/build/*.npk /var/lib/skiff/repository/

if [ "${1:-}" = "--run" ]; then
  exec node dist/src/daemon/main.js
fi
