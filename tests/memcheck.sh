#!/usr/bin/env bash
# Runs the test suite of defer-core and of the tests crate under valgrind's memcheck, one test
# binary at a time, and fails if memcheck reports any error (invalid read or write, use of
# uninitialised memory, mismatched free). defer-core has one module with `unsafe` (src/engine/raw/);
# this is the check the project requires of it. (Miri, on the nightly toolchain, also runs the
# unit tests of src/engine/raw/: `MIRIFLAGS=-Zmiri-ignore-leaks cargo +nightly miri test -p
# defer-core --lib raw`; it is not part of CI.)
#
# Usage: tests/memcheck.sh [--all] [NAME ...]
#   By default the two million-level depth suites (`depth`, `coro_depth`: minutes natively, hours
#   under memcheck's 20-50x slowdown) are skipped, and `depth_suite` runs 2,000 levels deep
#   (DEFER_DEPTH); --all runs everything at full depth. NAMEs select test binaries by name.
#   Child processes (the depth suite's, teardown's and cycles' scenarios) run under memcheck too.
# Needs valgrind. Takes about 6 minutes without --all (the proptest suite is most of it).
set -euo pipefail
cd "$(dirname "$0")/.."
all=false
[ "${1:-}" = "--all" ] && { all=true; shift; }
only=("$@")
mapfile -t bins < <(cargo test -p defer-tests -p defer-core --all-features --no-run \
  --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] != ["bin"]:
        print(m["target"]["name"], m["executable"])
')
if [ ${#bins[@]} -eq 0 ]; then
  echo "no test binaries: the build failed (run: cargo test -p defer-tests -p defer-core --no-run)" >&2
  exit 1
fi
failed=0
for entry in "${bins[@]}"; do
  name=${entry%% *}
  bin=${entry#* }
  if [ ${#only[@]} -gt 0 ] && [[ ! " ${only[*]} " =~ " $name " ]]; then
    continue
  fi
  if ! $all && { [ "$name" = depth ] || [ "$name" = coro_depth ]; }; then
    echo "skip $name (run with --all)"
    continue
  fi
  if ! $all && [ "$name" = depth_suite ]; then
    export DEFER_DEPTH=2000
  else
    unset DEFER_DEPTH
  fi
  start=$(date +%s)
  log=$(mktemp)
  if valgrind --tool=memcheck --error-exitcode=99 --leak-check=no --quiet --trace-children=yes \
      "$bin" --test-threads=1 -q >"$log" 2>&1; then
    echo "ok   $name ($(( $(date +%s) - start )) s)"
  else
    echo "FAIL $name: see $log"
    failed=1
  fi
done
exit $failed
