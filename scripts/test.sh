#!/usr/bin/env bash
# Runs the built unit or integration tests (dist/test/<suite>/**/*.test.js, or the files given)
# with the `node` on PATH, with a timeout on every test (docs/testing.md).
#
#   scripts/test.sh unit
#   scripts/test.sh integration [dist/test/integration/.../x.test.js ...]
#
# Files are passed by name: on Node >= 21 `node --test DIR` treats DIR as a glob pattern and runs
# nothing useful. Integration files run one at a time (they share the host's cgroups and mounts).
#
# Timeouts: Node >= 24 applies --test-timeout to each test; Node 20 and 22 apply it to each file
# as a whole (the file's child process is the subtest that inherits it), so there it bounds a
# file. A test that needs longer than the per-test bound says so with its own `{ timeout }`.
set -euo pipefail
cd "$(dirname "$0")/.."

suite="${1:?usage: scripts/test.sh unit|integration [FILE...]}"
shift
case "$suite" in
  unit)
    per_test_ms=30000
    per_file_ms=300000
    concurrency=()
    ;;
  integration)
    per_test_ms=120000
    per_file_ms=900000
    concurrency=(--test-concurrency=1)
    ;;
  *)
    echo "scripts/test.sh: unknown suite '$suite' (unit or integration)" >&2
    exit 2
    ;;
esac

if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(find "dist/test/$suite" -name '*.test.js' | sort)
fi
if [ ${#files[@]} -eq 0 ]; then
  echo "scripts/test.sh: no $suite test files (run npm run build first)" >&2
  exit 1
fi

major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -ge 24 ]; then timeout_ms=$per_test_ms; else timeout_ms=$per_file_ms; fi
exec node --test "${concurrency[@]}" --test-timeout="$timeout_ms" "${files[@]}"
