#!/usr/bin/env bash
# tests/fuzz/fuzz.sh [SECONDS] [TARGET...] - build each libFuzzer target
# (tests/fuzz/fuzz-NAME.c) with clang and ASan/UBSan, and run it for
# SECONDS (default 60) on tests/fuzz/corpus/NAME.  New inputs go to a
# scratch corpus beside the build, not into the seeds; a crash, leak or
# timeout is left there and reported.  Exit 1 if any.  A dictionary
# tests/fuzz/NAME.dict, when there is one, is given to libFuzzer.
#
# The targets link the product's own layers (libengine.a, ...), built by ./configure and
# make in $work/build with clang and -fsanitize=fuzzer-no-link (so libFuzzer
# sees its coverage), with the flags and libraries Makefile.am gives it
# (DCMTK and the other libraries are not instrumented): a module such as
# source/dicomweb.c cannot be linked alone, and dicom.cc needs DCMTK and
# a C++ link.  The build is incremental; FUZZ_JOBS (default 2) jobs.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
[ $# -gt 0 ] && shift
work=${FUZZ_WORK_DIR:-${TMPDIR:-/tmp}/thlhp-fuzz}
targets=${*:-$(cd "$top/tests/fuzz" && ls fuzz-*.c | sed 's/^fuzz-//; s/\.c$//')}
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

# Debian 12: clang-14, with libFuzzer in libclang-rt-14-dev (only
# recommended by clang, so named here).
if ! command -v clang >/dev/null || ! command -v clang++ >/dev/null ||
   ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
	SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang libclang-rt-14-dev >/dev/null ||
		{ echo "fuzz.sh: cannot install clang"; exit 1; }
fi

# The library, instrumented; configured again when it was for another tree.
build=$work/build
mkdir -p "$build"
if ! grep -qxF "abs_top_srcdir = $top" "$build/Makefile" 2>/dev/null; then
	echo "fuzz.sh: configuring $build (log: $build/configure.log)"
	(cd "$build" && "$top/configure" CC=clang CXX=clang++ \
		CFLAGS="-g -O1 -fsanitize=fuzzer-no-link $san" \
		CXXFLAGS="-g -O1 -fsanitize=fuzzer-no-link $san" >configure.log 2>&1) ||
		{ echo "fuzz.sh: configure failed:"; tail -n 20 "$build/configure.log"; exit 1; }
fi
echo "fuzz.sh: building the layers with clang (log: $build/make.log)"
make -C "$build" -j"${FUZZ_JOBS:-2}" libstate.a libsource.a librules.a libengine.a >"$build/make.log" 2>&1 ||
	{ echo "fuzz.sh: make of the layers failed:"; grep -E -A 3 'error' "$build/make.log" | head -n 30; exit 1; }
# What Makefile.am compiles the library's C with and links its users with.
vars=$(printf 'fuzz-sh-vars:\n\t@echo "$(ALL_CFLAGS)"\n\t@echo "$(THLHP_LIBS)"\n' |
	make -s -C "$build" -f Makefile -f - fuzz-sh-vars) ||
	{ echo "fuzz.sh: cannot read the flags from $build/Makefile"; exit 1; }
cflags=$(printf '%s\n' "$vars" | sed -n 1p)
libs=$(printf '%s\n' "$vars" | sed -n 2p)

mkdir -p "$work"
found=0
for t in $targets; do
	bin=$work/fuzz-$t
	echo "fuzz.sh: building $t"
	# shellcheck disable=SC2086 # flag lists
	(cd "$build" &&
	 clang -g -O1 -D_GNU_SOURCE $cflags -Werror -fsanitize=fuzzer $san -c -o "$bin.o" "$top/tests/fuzz/fuzz-$t.c" &&
	 clang++ -fsanitize=fuzzer $san -o "$bin" "$bin.o" $libs) || exit 1
	mkdir -p "$work/corpus-$t" "$work/found-$t"
	echo "fuzz.sh: running $t for ${secs}s"
	log=$work/fuzz-$t.log
	dict=; [ -f "$top/tests/fuzz/$t.dict" ] && dict=-dict=$top/tests/fuzz/$t.dict
	(cd "$work/found-$t" &&
	 "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		${dict:+"$dict"} -artifact_prefix="$work/found-$t/" \
		"$work/corpus-$t" "$top/tests/fuzz/corpus/$t") >"$log" 2>&1
	rc=$?
	grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec|^#[0-9]+.*DONE' "$log" | tail -n 3
	if [ "$rc" -ne 0 ] || ls "$work/found-$t" | grep -q .; then
		found=1
		echo "fuzz.sh: $t FOUND (exit $rc):"
		ls -l "$work/found-$t"
		grep -E -A 12 'ERROR|runtime error|^fuzz-[a-z]*\.c:' "$log" | head -n 40
	else
		echo "fuzz.sh: $t found nothing ($(ls "$work/corpus-$t" | wc -l) new inputs in $work/corpus-$t)"
	fi
done
exit "$found"
