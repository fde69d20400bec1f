#!/usr/bin/env bash
# tests/fuzz/fuzz.sh [SECONDS] [TARGET...] - build each libFuzzer target
# (tests/fuzz/fuzz-NAME.c, fuzzing src/NAME.c) with clang and ASan/UBSan,
# and run it for SECONDS (default 60) on tests/fuzz/corpus/NAME.  New
# inputs go to a scratch corpus beside the build, not into the seeds;
# a crash, leak or timeout is left there and reported.  Exit 1 if any.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
[ $# -gt 0 ] && shift
work=${FUZZ_WORK_DIR:-${TMPDIR:-/tmp}/thlhp-fuzz}
targets=${*:-$(cd "$top/tests/fuzz" && ls fuzz-*.c | sed 's/^fuzz-//; s/\.c$//')}

# Debian 12: clang-14, with libFuzzer in libclang-rt-14-dev (only
# recommended by clang, so named here).
if ! command -v clang >/dev/null ||
   ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
	SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang libclang-rt-14-dev >/dev/null ||
		{ echo "fuzz.sh: cannot install clang"; exit 1; }
fi

mkdir -p "$work"
found=0
for t in $targets; do
	bin=$work/fuzz-$t
	echo "fuzz.sh: building $t"
	clang -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-iquote "$top/src" -o "$bin" \
		"$top/tests/fuzz/fuzz-$t.c" "$top/src/$t.c" "$top/src/util.c" || exit 1
	mkdir -p "$work/corpus-$t" "$work/found-$t"
	echo "fuzz.sh: running $t for ${secs}s"
	log=$work/fuzz-$t.log
	(cd "$work/found-$t" &&
	 "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work/found-$t/" "$work/corpus-$t" "$top/tests/fuzz/corpus/$t") >"$log" 2>&1
	rc=$?
	grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$log" | tail -n 2
	if [ "$rc" -ne 0 ] || ls "$work/found-$t" | grep -q .; then
		found=1
		echo "fuzz.sh: $t FOUND (exit $rc):"
		ls -l "$work/found-$t"
		grep -E -A 12 'ERROR|runtime error|fuzz-.*\.c:[0-9]+:' "$log" | head -n 40
	else
		echo "fuzz.sh: $t found nothing ($(ls "$work/corpus-$t" | wc -l) new inputs in $work/corpus-$t)"
	fi
done
exit "$found"
