#!/bin/sh
# Builds crictl from a cri-tools v1.26.1 source tree, offline, with the tree's vendored Go modules
# and Debian 12's Go 1.19 (`apt-get install golang-1.19`), then installs it as
# /usr/local/bin/crictl (or $CRICTL_INSTALL). Debian 12 has no crictl package; cri-tools v1.26 is
# the last release whose go.mod still accepts Go 1.19.
#
#   scripts/build-crictl.sh /path/to/cri-tools-v1.26.1
#
# The source tree is the caller's (e.g. `git archive v1.26.1` of kubernetes-sigs/cri-tools into
# /tmp/cri-tools); nothing of it is part of this repository, and the build writes nothing into it.
# Nothing is fetched: GOPROXY=off and -mod=vendor make a missing module an error, not a download.
#
# The binary is upstream's, unmodified. (crictl v1.26 sends the socket's path as HTTP/2
# `:authority`, which Node's http2 refuses; skiffd's CRI socket rewrites it: src/cri/authority.ts.)
set -eu

src=${1:?usage: build-crictl.sh CRI_TOOLS_V1.26.1_DIR}
version=${CRICTL_VERSION:-1.26.1}
install_to=${CRICTL_INSTALL:-/usr/local/bin/crictl}
go=${GO:-/usr/lib/go-1.19/bin/go}

[ -x "$go" ] || { echo "build-crictl: no Go at $go (apt-get install golang-1.19, or set GO=)" >&2; exit 1; }
[ -f "$src/go.mod" ] && [ -d "$src/vendor" ] && [ -d "$src/cmd/crictl" ] ||
  { echo "build-crictl: $src is not a cri-tools tree with vendor/ and cmd/crictl" >&2; exit 1; }
grep -q '^module github.com/kubernetes-sigs/cri-tools$' "$src/go.mod" ||
  { echo "build-crictl: $src/go.mod is not cri-tools'" >&2; exit 1; }

# The Go caches go to a scratch directory, so the build leaves nothing behind.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

out="$scratch/crictl"
(
  cd "$src"
  env GOFLAGS=-mod=vendor GOPROXY=off GOTOOLCHAIN=local GO111MODULE=on CGO_ENABLED=0 \
    GOCACHE="$scratch/cache" GOPATH="$scratch/gopath" \
    "$go" build -trimpath \
    -ldflags "-X github.com/kubernetes-sigs/cri-tools/pkg/version.Version=$version" \
    -o "$out" ./cmd/crictl
)
install -m 0755 "$out" "$install_to"
"$install_to" --version
