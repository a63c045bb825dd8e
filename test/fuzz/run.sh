#!/usr/bin/env bash
# Build the libFuzzer harness (ASan + UBSan) and run it for a bounded time.
#
#   test/fuzz/run.sh                  # 60 s (CI)
#   FUZZ_SECONDS=10 test/fuzz/run.sh  # shorter, locally
#
# The seed corpus in test/fuzz/corpus/ is read but never written: new inputs
# go to a scratch directory (FUZZ_WORK, default a temp dir). A crash leaves
# its input in FUZZ_WORK and the script exits non-zero. The last line is
# "fuzz_api: N executions in S s".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
secs="${FUZZ_SECONDS:-60}"
cc="${FUZZ_CC:-clang}"
work="${FUZZ_WORK:-$(mktemp -d -t bulktap-fuzz.XXXXXX)}"
mkdir -p "$work/corpus"

bin="$work/fuzz_api"
"$cc" -g -O1 -std=gnu11 -Wall -Wextra -Werror \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -fno-omit-frame-pointer -pthread -DBT_STRICT_OWNERSHIP \
  -o "$bin" "$here/fuzz_api.c" "$root"/c/*.c

log="$work/fuzz.log"
set +e
(cd "$work" && "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$here/corpus") >"$log" 2>&1
status=$?
set -e
if [ "$status" -ne 0 ]; then
  grep -v '^#' "$log" | tail -60
  echo "fuzz_api: FAILED (exit $status); inputs in $work"
  exit "$status"
fi
execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
echo "fuzz_api: ${execs:-0} executions in ${secs} s, no crash, no broken invariant"
[ -z "${FUZZ_WORK:-}" ] && rm -rf "$work"
exit 0
