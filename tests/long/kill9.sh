#!/usr/bin/env bash
# tests/long/kill9.sh [TRIALS] - the long form of t-kill9-pacs.sh (and of
# t-kill9.sh on the folder source): TRIALS (default 100) trials of kill -9
# at a random moment of `all -j4` against Orthanc and of its rerun, each
# rerun compared with an uninterrupted run byte for byte.  Not part of
# tests/run.sh (it takes about 25 minutes); prints one summary line per
# source, the figures of the README's reliability section.
# Needs a build: THLHP=path/to/thlhp-make (default _build/thlhp-make), not
# rebuilt while it runs; KILL9_SOURCES="dimse folder" (the default) picks.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-100}
export THLHP=${THLHP:-$top/_build/thlhp-make}
rc=0
for src in ${KILL9_SOURCES:-dimse folder}; do
	log=${TMPDIR:-/tmp}/thlhp-long-kill9-$src.log
	start=$(date +%s)
	if [ "$src" = dimse ]; then
		KILL9_TRIALS=$n bash "$top/tests/integration/t-kill9-pacs.sh" >"$log" 2>&1
	else
		KILL9_TRIALS=$n KILL9_JOBS=4 bash "$top/tests/integration/t-kill9.sh" >"$log" 2>&1
	fi
	r=$?
	[ $r -eq 0 ] || rc=1
	kills=$(grep -c '^  killed pid' "$log")
	missed=$(grep -c 'had already finished' "$log")
	summary=$(tail -n 1 "$log")
	[ "$(grep -c '^PASS\|^FAIL' "$log")" -gt 0 ] || summary="no assertion ran"
	printf '%s: %d trials, %d kills of a running thlhp-make (%d runs had ended first), %s checks; %s; %ds (log: %s)\n' \
		"$src" "$n" "$kills" "$missed" "$(grep -c '^PASS' "$log") passed / $(grep -c '^FAIL' "$log") failed" \
		"$summary" "$(( $(date +%s) - start ))" "$log"
done
exit $rc
