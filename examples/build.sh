#!/usr/bin/env bash
# Builds the example NPKs into examples/build/ (gitignored), signed with the committed example
# key. Every container runs busybox-static, so no host libraries are bind mounted.
#   examples/build.sh            (from anywhere, after `npm run build`)
# Needs: node, mksquashfs (squashfs-tools), busybox-static (BUSYBOX=/path overrides /bin/busybox).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EXAMPLES="$REPO/examples"
OUT="$EXAMPLES/build"
KEY="$EXAMPLES/keys/skiff-example.key"
BUSYBOX=${BUSYBOX:-/bin/busybox}
APPLETS=(sh echo cat sleep httpd ls true false)

cd "$REPO"
SKIFF=(node dist/src/cli/main.js)
if [ ! -f dist/src/cli/main.js ]; then
  echo "build.sh: dist/src/cli/main.js is missing (run npm run build first)" >&2
  exit 1
fi

if ! file "$BUSYBOX" 2>/dev/null | grep -q "statically linked" && ldd "$BUSYBOX" >/dev/null 2>&1; then
  echo "build.sh: $BUSYBOX is not statically linked (install busybox-static)" >&2
  exit 1
fi

rm -rf "$OUT"
mkdir -p "$OUT/roots"

# busybox root: /bin/busybox and one symlink per applet the examples use.
BUSYBOX_ROOT="$OUT/roots/busybox"
mkdir -p "$BUSYBOX_ROOT/bin"
cp "$BUSYBOX" "$BUSYBOX_ROOT/bin/busybox"
for applet in "${APPLETS[@]}"; do ln -s busybox "$BUSYBOX_ROOT/bin/$applet"; done

# httpd: the busybox root plus a document root.
HTTPD_ROOT="$OUT/roots/httpd"
cp -a "$BUSYBOX_ROOT" "$HTTPD_ROOT"
mkdir -p "$HTTPD_ROOT/www"
echo "<h1>Hello from httpd</h1>" >"$HTTPD_ROOT/www/index.html"

# message: a resource container holding one text file.
MESSAGE_ROOT="$OUT/roots/message"
mkdir -p "$MESSAGE_ROOT"
echo "Hello from the message resource" >"$MESSAGE_ROOT/message.txt"

pack() { # NAME ROOT
  "${SKIFF[@]}" pack -m "$EXAMPLES/$1/manifest.yaml" -r "$2" -k "$KEY" -o "$OUT"
}
pack hello-world "$BUSYBOX_ROOT"
pack crashing "$BUSYBOX_ROOT"
pack memeater "$BUSYBOX_ROOT"
pack hello-resource "$BUSYBOX_ROOT"
pack httpd "$HTTPD_ROOT"
pack httpd-idle "$HTTPD_ROOT"
pack message "$MESSAGE_ROOT"

rm -rf "$OUT/roots"
echo "example NPKs in $OUT (public key: $EXAMPLES/keys/skiff-example.pub)"
