#!/usr/bin/env bash
# Build and run the C tests of bulktap under sanitizers.
#
#   core_test         ASan + UBSan (+ LSan at exit), gcc and clang
#   offload_test      ASan + UBSan (+ LSan at exit), gcc and clang
#   gro_test          ASan + UBSan (+ LSan at exit), gcc and clang
#   concurrency_test  TSan (clang, and gcc when its TSan works), and ASan
#   ring_bench        built (gcc and clang, -O2) but not run: see bench/c
#
# Every build uses -Wall -Wextra -Werror. Build output goes to a temporary
# directory, never into the repository. Exit status is non-zero on any
# failure; the last line is the summed "N passed, N failed".
#
# Environment: BT_CONC_FRAMES (frames per producer in concurrency_test,
# default 200000), CC_LIST (compilers to use, default "gcc clang").
set -u

repo=$(cd "$(dirname "$0")/../.." && pwd)
build=$(mktemp -d "${TMPDIR:-/tmp}/bulktap-ctest.XXXXXX")
trap 'rm -rf "$build"' EXIT

warn="-Wall -Wextra -Werror"
common="-g -fno-omit-frame-pointer -I$repo/c"
lib_src=("$repo"/c/*.c)
asan="-O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -DBT_STRICT_OWNERSHIP"
tsan="-O1 -fsanitize=thread -DBT_STRICT_OWNERSHIP"

# LSan is on by default with ASan on Linux; say so explicitly. UBSan stops
# at the first error (-fno-sanitize-recover) so it cannot pass silently.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export TSAN_OPTIONS="halt_on_error=0:exitcode=66:${TSAN_OPTIONS:-}"

total_pass=0
total_fail=0

compilers=()
for cc in ${CC_LIST:-gcc clang}; do
	if command -v "$cc" >/dev/null 2>&1; then
		compilers+=("$cc")
	else
		missing="${missing:-} $cc"
	fi
done
if [ -n "${missing:-}" ]; then
	echo "################################################################"
	echo "# WARNING: compiler(s) not found:$missing"
	echo "# Their builds and sanitizer runs are SKIPPED; checking only" \
		"with: ${compilers[*]:-nothing}"
	echo "################################################################"
	if [ "${BULKTAP_REQUIRE_ALL:-}" = 1 ]; then
		echo "# BULKTAP_REQUIRE_ALL=1: every compiler is required (CI)"
		total_fail=$((total_fail + 1))
	fi
fi
if [ ${#compilers[@]} -eq 0 ]; then
	echo "no C compiler found"
	echo "0 passed, 1 failed"
	exit 1
fi
have() { [[ " ${compilers[*]} " == *" $1 "* ]]; }

# build NAME CC FLAGS SOURCE: compile one binary; a failed build counts
# as one failure.
build() {
	local name=$1 cc=$2 flags=$3 src=$4
	# shellcheck disable=SC2086
	if ! "$cc" $flags $warn $common "${lib_src[@]}" "$src" \
		-o "$build/$name" -lpthread >"$build/$name.build.log" 2>&1; then
		echo "FAIL build $name:"
		sed 's/^/    /' "$build/$name.build.log"
		total_fail=$((total_fail + 1))
		return 1
	fi
	return 0
}

# run NAME [PREFIX...]: run a test binary, echo its output, add its
# "N passed, N failed" line to the totals. A crash, a missing summary or a
# sanitizer report after a clean summary (LSan and TSan report at exit)
# each count as one more failure.
run() {
	local name=$1
	shift
	local log="$build/$name.log" rc summary p f
	"$@" "$build/$name" >"$log" 2>&1
	rc=$?
	# ThreadSanitizer maps its shadow memory at fixed addresses. With a
	# high vm.mmap_rnd_bits (newer kernels default to 32 on x86-64), ASLR
	# can place the binary or libraries where the shadow must go and the
	# runtime aborts with "unexpected memory mapping". Turning ASLR off for
	# this one process (setarch -R) avoids the collision without changing
	# system settings; it affects nothing the test checks.
	if grep -q "unexpected memory mapping" "$log" && [ $# -eq 0 ]; then
		echo "# $name: TSan hit 'unexpected memory mapping'; rerunning" \
			"with ASLR disabled (setarch $(uname -m) -R)"
		setarch "$(uname -m)" -R "$build/$name" >"$log" 2>&1
		rc=$?
	fi
	echo "== $name"
	sed 's/^/  /' "$log"
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	if [ -z "$summary" ]; then
		echo "FAIL $name: no summary line (crashed? exit $rc)"
		total_fail=$((total_fail + 1))
		return
	fi
	p=${summary%% passed*}
	f=${summary#*, }
	f=${f%% failed*}
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	if [ "$f" -eq 0 ] && { [ "$rc" -ne 0 ] ||
		grep -qE '^(==[0-9]+==ERROR|WARNING: ThreadSanitizer|SUMMARY: (Address|Undefined|Leak|Thread)Sanitizer)|runtime error:' "$log"; }; then
		echo "FAIL $name: tests passed but exit status $rc / sanitizer report above"
		total_fail=$((total_fail + 1))
	fi
}

# -- core_test: ASan + UBSan + LSan, every compiler ---------------------
for cc in "${compilers[@]}"; do
	build "core_test.asan.$cc" "$cc" "$asan" "$repo/test/c/core_test.c" &&
		run "core_test.asan.$cc"
done

# -- offload_test: ASan + UBSan, every compiler --------------------------
for cc in "${compilers[@]}"; do
	build "offload_test.asan.$cc" "$cc" "$asan" \
		"$repo/test/c/offload_test.c" &&
		run "offload_test.asan.$cc"
done

# -- gro_test: ASan + UBSan + LSan, every compiler ----------------------
for cc in "${compilers[@]}"; do
	build "gro_test.asan.$cc" "$cc" "$asan" "$repo/test/c/gro_test.c" &&
		run "gro_test.asan.$cc"
done

# -- concurrency_test: TSan ---------------------------------------------
for cc in "${compilers[@]}"; do
	if build "concurrency_test.tsan.$cc" "$cc" "$tsan" \
		"$repo/test/c/concurrency_test.c"; then
		run "concurrency_test.tsan.$cc"
	fi
done

# -- concurrency_test: ASan + UBSan -------------------------------------
cc=${compilers[0]}
have clang && cc=clang
build "concurrency_test.asan.$cc" "$cc" "$asan" \
	"$repo/test/c/concurrency_test.c" &&
	run "concurrency_test.asan.$cc"

# -- ring_bench: must build, warning-free, optimised ----------------------
for cc in "${compilers[@]}"; do
	if build "ring_bench.$cc" "$cc" "-O2" "$repo/bench/c/ring_bench.c"; then
		echo "ok build ring_bench ($cc)"
		total_pass=$((total_pass + 1))
	fi
done

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
