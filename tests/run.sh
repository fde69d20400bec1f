#!/usr/bin/env bash
# tests/run.sh - on a fresh Debian machine: install what the build and the
# tests need, build with autotools (sanitizers on, warnings as errors), run
# the unit tests and every integration scenario, and end with one line
# "N passed, M failed".  Exit 0 only when nothing failed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# What builds it (build-deps.txt, shared with examples/quickstart.sh), then
# what the tests run.
pkgs="$(sed 's/#.*//' build-deps.txt)
      dcmtk sqlite3 libcmocka-dev
      python3-pydicom unzip orthanc orthanc-dicomweb nginx curl iproute2 util-linux openssl
      postgresql postgresql-client 7zip valgrind graphviz bash-completion groff-base tmux
      dcm2niix rsync libgdcm-tools procps python3-aiosmtpd"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "run.sh: installing:$missing"
	SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null ||
		{ echo "run.sh: apt-get install failed"; echo "0 passed, 1 failed"; exit 1; }
	# The package may start a system-wide Orthanc; the tests start their own.
	case "$missing" in *orthanc*) $SUDO service orthanc stop >/dev/null 2>&1 ;; esac
	case "$missing" in *nginx*) $SUDO service nginx stop >/dev/null 2>&1 ;; esac
	case "$missing" in *postgresql*) $SUDO service postgresql stop >/dev/null 2>&1 ;; esac
fi

build=${THLHP_BUILD_DIR:-$top/_build}
log=$build/build.log
mkdir -p "$build"
echo "run.sh: building in $build (log: $log)"
if ! { autoreconf -fi && cd "$build" &&
       "$top/configure" --enable-sanitizers --enable-werror &&
       make -j"$(nproc)"; } >"$log" 2>&1; then
	tail -n 40 "$log"
	echo "run.sh: build failed"
	echo "0 passed, 1 failed"
	exit 1
fi
cd "$top"

export THLHP="$build/thlhp-make"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0 failed=0 failures=

# Unit tests: cmocka programs built by `make check`; each test case counts.
# Other check programs (the fuzz targets replayed over their corpora)
# count one each.
(cd "$build" && make -j"$(nproc)" check >"$build/check.log" 2>&1)
nunit=0
for trs in "$build"/*.trs; do
	[ -f "$trs" ] || continue
	name=$(basename "$trs" .trs)
	log=$build/$name.log
	case $name in
	test-*) ;;
	*)
		if grep -q '^:test-result: PASS' "$trs"; then
			passed=$((passed + 1)); echo "PASS check/$name"
		else
			failed=$((failed + 1)); failures="$failures check/$name"
			echo "FAIL check/$name"; tail -n 20 "$log" | sed 's/^/    /'
		fi
		continue ;;
	esac
	nunit=$((nunit + 1))
	ok=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	bad=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	passed=$((passed + ${ok:-0}))
	if grep -q '^:test-result: PASS' "$trs" && [ -z "$bad" ]; then
		echo "PASS unit/$name (${ok:-0} cases)"
	else
		failed=$((failed + ${bad:-1})); failures="$failures unit/$name"
		echo "FAIL unit/$name"; grep -E 'FAILED|ERROR|runtime error|Sanitizer' "$log" | head -n 30 | sed 's/^/    /'
	fi
done
if [ "$nunit" -eq 0 ]; then
	failed=$((failed + 1)); failures="$failures unit-build"
	tail -n 40 "$build/check.log"
fi

# excerpt LOG : what a failed scenario printed, from its first failed
# check on (that is where the cause shows), then its last lines.
excerpt() {
	local first
	first=$(grep -n -m1 'FAIL' "$1" | cut -d: -f1)
	if [ -n "$first" ] && [ "$(wc -l <"$1")" -gt $((first + 50)) ]; then
		sed -n "$((first > 5 ? first - 5 : 1)),$((first + 44))p" "$1" | sed 's/^/    /'
		echo "    [...]"
		tail -n 5 "$1" | sed 's/^/    /'
	else
		tail -n 50 "$1" | sed 's/^/    /'
	fi
}

# Integration scenarios: each script exits 0 when every check in it held.
# They wait on servers, disks and timers more than they compute, so up to
# THLHP_TEST_JOBS (default 3) run at once, the longest started first;
# each has its own temp dir, free ports and (as root) network namespace.
# pool JOBS CMD NAME... : run "CMD NAME" for each NAME, JOBS at a time;
# CMD prints its PASS/FAIL report into $build/NAME.res, shown as each ends.
pool() {
	local jobs=$1 cmd=$2 name running=0
	shift 2
	for name in "$@"; do
		while [ "$running" -ge "$jobs" ]; do
			wait -n
			running=$((running - 1))
		done
		"$cmd" "$name" &
		running=$((running + 1))
	done
	wait
}
# scenario NAME : run tests/integration/NAME.sh; its verdict in NAME.res.
scenario() {
	local name=$1 out=$build/$1.out start
	start=$(date +%s)
	if bash "tests/integration/$name.sh" >"$out" 2>&1; then
		echo "PASS $name ($(( $(date +%s) - start ))s)" >"$build/$name.res"
	else
		{ echo "FAIL $name ($(( $(date +%s) - start ))s)"; excerpt "$out"; } >"$build/$name.res"
	fi
	cat "$build/$name.res"
}
# The slow ones first, so that the pool ends together.
first="t-workers t-dimse-faults t-dimse-faults-move t-disk-full t-pg t-dicomweb t-interrupt"
names=$(for n in $first; do [ -f "tests/integration/$n.sh" ] && echo "$n"; done
	for t in tests/integration/t-*.sh; do
		n=$(basename "$t" .sh)
		case " $first " in *" $n "*) ;; *) echo "$n" ;; esac
	done)
rm -f "$build"/t-*.res
pool "${THLHP_TEST_JOBS:-3}" scenario $names
for name in $names; do
	if grep -q '^PASS' "$build/$name.res" 2>/dev/null; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1)); failures="$failures $name"
	fi
done

# Valgrind memcheck: scenarios again, on a build without sanitizers (the
# two do not mix), every process of thlhp-make under memcheck.  A scenario
# passes when all its checks hold and valgrind reported no error and no
# definite or indirect leak in any process.
vbuild=$build-valgrind
mkdir -p "$vbuild/vg"
if ! (cd "$vbuild" && "$top/configure" --enable-werror CFLAGS="-g -O1" CXXFLAGS="-g -O1" &&
      make -j"$(nproc)" thlhp-make) >"$vbuild/build.log" 2>&1; then
	failed=$((failed + 1)); failures="$failures valgrind-build"
	echo "FAIL valgrind-build"; tail -n 20 "$vbuild/build.log"
else
	cat >"$vbuild/thlhp-make-vg" <<VG
#!/bin/sh
exec valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \\
	--errors-for-leak-kinds=definite,indirect --log-file=\${VGDIR:-$vbuild/vg}/%p.log $vbuild/thlhp-make "\$@"
VG
	chmod +x "$vbuild/thlhp-make-vg"
	# vgscenario NAME : NAME under memcheck; its verdict in vg-NAME.res.
	vgscenario() {
		local name=$1 out=$vbuild/$1.out start
		mkdir -p "$vbuild/vg/$name"
		start=$(date +%s)
		if THLHP=$vbuild/thlhp-make-vg VGDIR=$vbuild/vg/$name bash "tests/integration/$name.sh" >"$out" 2>&1 &&
		   [ -z "$(find "$vbuild/vg/$name" -name '*.log' -size +0)" ]; then
			echo "PASS valgrind/$name ($(( $(date +%s) - start ))s)" >"$vbuild/$name.res"
		else
			{ echo "FAIL valgrind/$name ($(( $(date +%s) - start ))s)"; excerpt "$out"
			  find "$vbuild/vg/$name" -name '*.log' -size +0 -exec head -n 40 {} \; |
				sed 's/^/    /' | head -n 80; } >"$vbuild/$name.res"
		fi
		cat "$vbuild/$name.res"
	}
	vgnames="t-pg t-dimse t-full t-validate t-malformed"
	rm -rf "$vbuild"/vg/* "$vbuild"/t-*.res
	pool 2 vgscenario $vgnames
	for name in $vgnames; do
		if grep -q '^PASS' "$vbuild/$name.res" 2>/dev/null; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1)); failures="$failures valgrind/$name"
		fi
	done
fi

# make distcheck: the tarball builds, passes make check, installs and
# uninstalls cleanly (in the build without sanitizers).
if [ -f "$vbuild/Makefile" ]; then
	start=$(date +%s)
	if make -C "$vbuild" distcheck >"$vbuild/distcheck.log" 2>&1; then
		passed=$((passed + 1)); echo "PASS distcheck ($(( $(date +%s) - start ))s)"
	else
		failed=$((failed + 1)); failures="$failures distcheck"
		echo "FAIL distcheck"; tail -n 30 "$vbuild/distcheck.log" | sed 's/^/    /'
	fi
fi

[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
