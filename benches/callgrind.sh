#!/usr/bin/env bash
# Instructions per operation of each workload, counted by callgrind (stable on a noisy machine).
# Usage: benches/callgrind.sh [NAME ...]   (exact workload names; default: all)
# Needs the release binary: cargo build --release -p defer-bench --bin workloads
# For each workload: (Ir(12 runs) - Ir(4 runs)) / (8 n): process start and setup cancel out, and so do
# the first runs, which cost more while the allocator's free lists fill up (steady state is what counts).
set -euo pipefail
bin="${CARGO_TARGET_DIR:-target}/release/workloads"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  mapfile -t names < <("$bin" --budget-ms 1 2>/dev/null | awk '!/^allocs_/ {print $1}')
fi
ir() { # name runs
  valgrind --tool=callgrind --callgrind-out-file="$out/cg.$2" "$bin" --exact "$1" --runs "$2" >/dev/null 2>&1
  awk '/^summary:/ {print $2}' "$out/cg.$2"
}
for name in "${names[@]}"; do
  case "$name" in
    W3_deep_pending_100000*|W4_*|W6_*) n=100000 ;;
    W1_*|W2_*|W3_*) n=1000 ;;
    *) n=10000 ;;
  esac
  a=$(ir "$name" 4); b=$(ir "$name" 12)
  awk -v a="$a" -v b="$b" -v n="$n" -v name="$name" 'BEGIN { printf "ir_%s %.1f\n", name, (b - a) / (8 * n) }'
done
