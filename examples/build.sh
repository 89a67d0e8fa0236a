#!/usr/bin/env bash
# Builds the example NPKs into examples/build/ (gitignored), signed with the committed example
# key. Every container runs busybox-static, so no host libraries are bind mounted.
#   examples/build.sh            (from anywhere; builds TypeScript first if dist/ is missing)
# Needs: node, mksquashfs (squashfs-tools), busybox-static (BUSYBOX=/path overrides /bin/busybox).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EXAMPLES="$REPO/examples"
OUT="$EXAMPLES/build"
KEY="$EXAMPLES/keys/skiff-example.key"
BUSYBOX=${BUSYBOX:-/bin/busybox}
APPLETS=(sh echo cat sleep httpd ls true false)

cd "$REPO"
[ -f dist/src/cli/commands/package.js ] && [ -f dist/examples/skiff-package.js ] || npx tsc -p tsconfig.json
# Use the real CLI once it knows `pack`; until then the standalone runner of the same commands.
if node dist/src/cli/main.js pack --help >/dev/null 2>&1; then
  SKIFF=(node dist/src/cli/main.js)
else
  SKIFF=(node dist/examples/skiff-package.js)
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
pack message "$MESSAGE_ROOT"

rm -rf "$OUT/roots"
echo "example NPKs in $OUT (public key: $EXAMPLES/keys/skiff-example.pub)"
