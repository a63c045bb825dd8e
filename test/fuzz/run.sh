#!/usr/bin/env bash
# Build the libFuzzer harnesses (ASan + UBSan) and run them for a bounded
# time, FUZZ_SECONDS in all, split evenly between them.
#
#   test/fuzz/run.sh                  # 60 s (CI)
#   FUZZ_SECONDS=10 test/fuzz/run.sh  # shorter, locally
#
# The seed corpora (test/fuzz/corpus/ for fuzz_api, test/fuzz/corpus_NAME/
# for another harness, when present) are read but never written: new inputs
# go to a scratch directory (FUZZ_WORK, default a temp dir). A crash leaves
# its input in FUZZ_WORK and the script exits non-zero. Each harness ends
# with a line "NAME: N executions in S s".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
secs="${FUZZ_SECONDS:-60}"
cc="${FUZZ_CC:-clang}"
work="${FUZZ_WORK:-$(mktemp -d -t bulktap-fuzz.XXXXXX)}"

harnesses=()
for h in fuzz_api fuzz_gso fuzz_gro; do
  [ -f "$here/$h.c" ] || continue
  harnesses+=("$h")
done
left="$secs"
for i in "${!harnesses[@]}"; do
  h="${harnesses[$i]}"
  # an even share; the last one gets what is left
  t=$((left / (${#harnesses[@]} - i)))
  [ "$t" -ge 1 ] || t=1
  left=$((left - t))
  mkdir -p "$work/$h/corpus"
  seed="$here/corpus"
  [ "$h" = fuzz_api ] || seed="$here/corpus_$h"
  seeds=()
  [ -d "$seed" ] && seeds+=("$seed")

  bin="$work/$h/$h"
  "$cc" -g -O1 -std=gnu11 -Wall -Wextra -Werror \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -fno-omit-frame-pointer -pthread -DBT_STRICT_OWNERSHIP \
    -o "$bin" "$here/$h.c" "$root"/c/*.c

  log="$work/$h/fuzz.log"
  set +e
  (cd "$work/$h" && "$bin" -max_total_time="$t" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/$h/" "$work/$h/corpus" ${seeds[@]+"${seeds[@]}"}) >"$log" 2>&1
  status=$?
  set -e
  if [ "$status" -ne 0 ]; then
    grep -v '^#' "$log" | tail -60
    echo "$h: FAILED (exit $status); inputs in $work/$h"
    exit "$status"
  fi
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
  echo "$h: ${execs:-0} executions in ${t} s, no crash, no broken invariant"
done
[ -z "${FUZZ_WORK:-}" ] && rm -rf "$work"
exit 0
