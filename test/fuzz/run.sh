#!/usr/bin/env bash
# Build the libFuzzer harnesses (ASan + UBSan) and run each for a bounded
# time, one after the other: fuzz_api (the C API), fuzz_gso (the software
# offloads) and fuzz_gro when its source exists. FUZZ_SECONDS is the total,
# split evenly between the harnesses present (the first gets the rest).
#
#   test/fuzz/run.sh                  # 60 s in all (CI)
#   FUZZ_SECONDS=10 test/fuzz/run.sh  # shorter, locally
#
# Seed corpora are read but never written: fuzz_api's is test/fuzz/corpus/,
# another harness's test/fuzz/corpus_NAME/ if there is one. New inputs go to
# a scratch directory (FUZZ_WORK, default a temp dir), one subdirectory per
# harness. A crash leaves its input there and the script exits non-zero at
# once. Each harness prints one line "NAME: N executions in S s, ...".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
secs="${FUZZ_SECONDS:-60}"
cc="${FUZZ_CC:-clang}"
work="${FUZZ_WORK:-$(mktemp -d -t bulktap-fuzz.XXXXXX)}"

harnesses=()
for h in fuzz_api fuzz_gso fuzz_gro; do
  [ -f "$here/$h.c" ] && harnesses+=("$h")
done
each=$((secs / ${#harnesses[@]}))
first=$((secs - each * (${#harnesses[@]} - 1)))
# libFuzzer reads -max_total_time=0 as "no limit".
[ "$each" -ge 1 ] || each=1
[ "$first" -ge 1 ] || first=1

t=$first
for h in "${harnesses[@]}"; do
  dir="$work/$h"
  mkdir -p "$dir/corpus"
  seeds=()
  if [ "$h" = fuzz_api ]; then
    seeds+=("$here/corpus")
  elif [ -d "$here/corpus_$h" ]; then
    seeds+=("$here/corpus_$h")
  fi

  bin="$dir/$h"
  "$cc" -g -O1 -std=gnu11 -Wall -Wextra -Werror \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -fno-omit-frame-pointer -pthread -DBT_STRICT_OWNERSHIP \
    -o "$bin" "$here/$h.c" "$root"/c/*.c

  log="$dir/fuzz.log"
  set +e
  (cd "$dir" && "$bin" -max_total_time="$t" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/" "$dir/corpus" \
    ${seeds[@]+"${seeds[@]}"}) >"$log" 2>&1
  status=$?
  set -e
  if [ "$status" -ne 0 ]; then
    grep -v '^#' "$log" | tail -60
    echo "$h: FAILED (exit $status); inputs in $dir"
    exit "$status"
  fi
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
  echo "$h: ${execs:-0} executions in ${t} s, no crash, no broken invariant"
  t=$each
done
[ -z "${FUZZ_WORK:-}" ] && rm -rf "$work"
exit 0
