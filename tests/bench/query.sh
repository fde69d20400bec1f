#!/usr/bin/env bash
# tests/bench/query.sh - asking the PACS what changed: Orthanc over DIMSE on
# loopback holding 1,000 patients / 2,000 studies / ~4,000 series, one small
# instance each (gen_studies.py; BENCH_SCALE=small: 50 patients), and what
# one `thlhp-make -q` costs it, in C-FIND requests and wall time:
#
#   thlhp-make -q, nothing changed     one STUDY-level C-FIND per [select] glob
#   thlhp-make -q, one new series      ... plus the SERIES level of that study
#   thlhp-make -q, full_query_every = 0    the full walk: PATIENT level, then
#                                      STUDY per patient, SERIES per study
#   thlhp-make of 7aa1874 -q           the last release: the full walk on every run
#   findscu, the same STUDY-level question once (the floor)
#
# RUNS rounds (default 5), every contender once a round, medians; the new
# series is a fresh one each round, uploaded before and deleted after.  The
# requests are counted by Orthanc: one untimed run of each command with its
# log level at verbose (a line "DICOM C-Find request at level: X" per
# C-FIND), checked against thlhp-make's own -v summary (of `thlhp-make -v
# query` on a copy of the state: -q and -n print none) and, for 7aa1874,
# against 1 + patients + studies.  Every thlhp-make runs with
# max_requests_per_minute = 1000000, so that the token bucket never waits;
# the cost at the default 600 a minute is projected from the counts.
# Orthanc's storage and both project dirs are kept in $BENCH_DIR.  As root
# the script runs in a private network namespace (only loopback), like the
# tests.  Prints a markdown section on stdout; progress on stderr.
#
#   tests/bench/query.sh    # THLHP, BENCH_DIR, BENCH_SCALE, RUNS, IDLE_*: see lib.sh
#                           # OLD_THLHP: the 7aa1874 binary (default: built
#                           # from git history into $BENCH_DIR/old-7aa1874)
# shellcheck disable=SC2016  # backquotes in single quotes are markdown
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# The whole run, builds and loading included (exported: the private network
# namespace runs the script again).
# QUERY_DID: what it had to make first (nothing: all of it cached).
export QUERY_T0=${QUERY_T0:-$EPOCHREALTIME} QUERY_DID=${QUERY_DID:-}
# before the private network namespace, which has no way out
bench_install dcmtk orthanc curl time iproute2 util-linux python3-pydicom autoconf automake pkg-config
thlhp_binary
export THLHP

# The last release, which walked everything on every run (state schema 3),
# built from the repository's history as tests/integration/t-upgrade.sh
# does, with -O2 like THLHP; once, kept in $BENCH_DIR.
OLD_REV=7aa1874
if [ -z "${OLD_THLHP:-}" ]; then
	ob=$BENCH_DIR/old-$OLD_REV
	if [ ! -x "$ob/thlhp-make" ]; then
		git -C "$TOP" cat-file -e "$OLD_REV^{commit}" 2>/dev/null ||
			die "commit $OLD_REV is not in the repository at $TOP (git fetch --unshallow)"
		log "building thlhp-make $OLD_REV in $ob (git archive, autoreconf, configure CFLAGS=-O2, make)"
		rm -rf "$ob"
		mkdir -p "$ob" || die "cannot make $ob"
		(set -o pipefail
			git -C "$TOP" archive "$OLD_REV" | tar -x -C "$ob" &&
			cd "$ob" && autoreconf -fi && ./configure CFLAGS=-O2 CXXFLAGS=-O2 &&
			make -j2 thlhp-make) >"$BENCH_DIR/old-$OLD_REV-build.log" 2>&1 ||
			die "building thlhp-make $OLD_REV failed: see $BENCH_DIR/old-$OLD_REV-build.log"
		QUERY_DID+="building $OLD_REV, "
	fi
	OLD_THLHP=$ob/thlhp-make
fi
[ -x "$OLD_THLHP" ] || die "OLD_THLHP=$OLD_THLHP is not an executable"
export OLD_THLHP
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$BENCH/../netns.sh"
unset TCP_NODELAY

if [ "$BENCH_SCALE" = small ]; then NP=50; else NP=1000; fi
GLOB='TH*'    # [select] patient_id: one glob
NGLOBS=1
GEN=$BENCH_DIR/studies-$NP
read -r NPAT NSTUDY NSERIES < <("$PY" "$BENCH/gen_studies.py" "$GEN" --patients "$NP") ||
	die "gen_studies.py failed"
[ -n "$NSERIES" ] || die "gen_studies.py printed no counts"

W=$BENCH_DIR/query-work
rm -rf "$W"
mkdir -p "$W"

# ---- Orthanc, loaded once ---------------------------------------------------
# tests/orthanc.sh wants T, LOG, BGPIDS and say (as download.sh).
# shellcheck disable=SC2034  # T, LOG, OR_*: tests/orthanc.sh's
T=$W LOG=$W BGPIDS=
say() { log "$*"; }
# shellcheck source-path=SCRIPTDIR source=../orthanc.sh
source "$BENCH/../orthanc.sh"
OR_DIR=$BENCH_DIR/orthanc-query-$NP   # its storage, kept for the next run
NEW_ID=$OR_DIR/new-series.id          # the Orthanc ID of a new series not yet deleted
# shellcheck disable=SC2034
OR_MODALITIES='"findscu": [ "FINDSCU", "127.0.0.1", 9 ]'
# shellcheck disable=SC2034
OR_EXTRA='"SaveJobs": false'

# new_series_delete : delete the series new_series_add uploaded, if any.
new_series_delete() {
	[ -s "$NEW_ID" ] || return 0
	or_curl "/series/$(cat "$NEW_ID")" -X DELETE >/dev/null || return 1
	rm -f "$NEW_ID"
}
# new_series_add K : upload a new series (one instance) into patient 1's
# first study, series number 90000 + K; sets NEW_UID, its SeriesInstanceUID.
new_series_add() {
	local f
	f=$("$PY" "$BENCH/gen_studies.py" "$W/new" --new-series 1 "$1") || die "gen_studies.py --new-series failed"
	NEW_UID=$(dcmdump +P SeriesInstanceUID "$f" | sed 's/.*\[\(.*\)\].*/\1/')
	or_curl /instances -X POST --data-binary @"$f" |
		"$PY" -c 'import json, sys; print(json.load(sys.stdin)["ParentSeries"])' >"$NEW_ID"
	[ -s "$NEW_ID" ] || die "uploading $f to Orthanc failed"
}
cleanup() {
	local p
	[ -z "${OR_HTTP:-}" ] || new_series_delete 2>/dev/null
	for p in $BGPIDS; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

or_counts() {
	or_curl /statistics | "$PY" -c 'import json, sys; s = json.load(sys.stdin)
print(s["CountPatients"], s["CountStudies"], s["CountSeries"])'
}
orthanc_start >&2   # its failure report (the tail of its log) goes to stderr
new_series_delete || die "deleting the new series left by an earlier run failed"
if [ "$(or_counts)" != "$NPAT $NSTUDY $NSERIES" ]; then
	log "loading $NSERIES instances ($NPAT patients, $NSTUDY studies) into Orthanc ($OR_DIR, kept for the next run)"
	orthanc_stop
	rm -rf "$OR_DIR/db"
	orthanc_start >&2
	find "$GEN" -name '*.dcm' -print0 | xargs -0 -P2 -n 16 sh -c \
		'for f; do curl -sf -X POST --data-binary @"$f" "$0" >/dev/null || exit 1; done' \
		"http://127.0.0.1:$OR_HTTP/instances" || die "upload to Orthanc failed"
	QUERY_DID+="loading Orthanc, "
	n=$(or_counts)
	[ "$n" = "$NPAT $NSTUDY $NSERIES" ] || die "Orthanc holds $n patients, studies, series, not $NPAT $NSTUDY $NSERIES"
fi
cat "$OR_DIR"/db/index* >/dev/null 2>&1   # its index in the page cache

# ---- the two projects -------------------------------------------------------

# write_ini [EXTRA-PACS-LINE] : thlhp.ini for this Orthanc (both releases
# know every key of it but full_query_every, which only this one gets).
write_ini() {
	cat <<INI
[pacs]
protocol = dimse
host = 127.0.0.1
port = $OR_DICOM
called_aet = ORTHANC
calling_aet = THLHP
retrieve = get
max_associations = 2
max_requests_per_minute = 1000000
timeout = 30
retries = 1${1:+
$1}

[select]
patient_id = $GLOB

[output]
dicom_dir = data/dicom
zip_dir = data/zip

[state]
url = sqlite:.thlhp/state.db
INI
}
NEWP=$BENCH_DIR/query-new-$NP OLDP=$BENCH_DIR/query-old-$NP
mkdir -p "$NEWP" "$OLDP"
write_ini >"$NEWP/thlhp.ini"
write_ini "full_query_every = 0" >"$NEWP/full.ini"
write_ini >"$OLDP/thlhp.ini"

# up_to_date DIR BINARY : DIR's archives built by BINARY and `-q` saying so.
up_to_date() {
	(cd "$1" && "$2" -q) && return 0
	log "$1: $2 -j2 all (the first run, or the data changed)"
	(cd "$1" && "$2" -j2 all >all.log 2>&1) || die "thlhp-make all in $1 failed: see $1/all.log"
	QUERY_DID+="\`all\` in $(basename "$1"), "
	(cd "$1" && "$2" -q) || die "$1: not up to date after all (-q: exit $?)"
}
up_to_date "$NEWP" "$THLHP"
up_to_date "$OLDP" "$OLD_THLHP"
# A full walk recorded now: the timed -q runs take the studies' counts
# from it (full_query_every is 1d).
(cd "$NEWP" && "$THLHP" -v -B query >full.log 2>&1) || die "thlhp-make -B query failed: see $NEWP/full.log"

# ---- the contenders -----------------------------------------------------------

FIND=(env TCP_NODELAY=1 findscu -S -aet FINDSCU -aec ORTHANC -k QueryRetrieveLevel=STUDY
	-k "PatientID=$GLOB" -k NumberOfStudyRelatedSeries -k NumberOfStudyRelatedInstances
	-k StudyInstanceUID 127.0.0.1 "$OR_DICOM")
NAMES="same new full old findscu"
declare -A LABEL=(
	[same]='**thlhp-make -q**, nothing changed'
	[new]='**thlhp-make -q**, one new series in an existing study'
	[full]='thlhp-make -q with `full_query_every = 0`: the full walk'
	[old]="thlhp-make of $OLD_REV (the last release) -q, nothing changed: the full walk on every run"
	[findscu]='`findscu`, the same STUDY-level question once'
)
# run_c NAME : contender NAME once, as a program under time_cmd (status checked).
run_c() {
	case $1 in
	same) time_cmd 0 env -u TCP_NODELAY "$THLHP" -C "$NEWP" -q ;;
	new) time_cmd 1 env -u TCP_NODELAY "$THLHP" -C "$NEWP" -q ;;
	full) time_cmd 0 env -u TCP_NODELAY "$THLHP" -C "$NEWP" -f full.ini -q ;;
	old) time_cmd 0 env -u TCP_NODELAY "$OLD_THLHP" -C "$OLDP" -q ;;
	findscu) time_cmd 0 "${FIND[@]}" ;;
	esac
}
# or_cpu : Orthanc's CPU seconds (user + system) so far.
or_cpu() { awk -v t="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$OR_PID/stat"; }
or_level() { or_curl /tools/log-level -X PUT -d "$1" >/dev/null || die "cannot set Orthanc's log level"; }

# count NAME : one untimed run of NAME with Orthanc logging every C-FIND;
# sets REQ[NAME] (the total) and BY[NAME] ("1 study-level, 2 series-level").
declare -A REQ BY VSUM
count() {
	local n0 levels
	or_level verbose
	n0=$(wc -l <"$W/orthanc.log")
	run_c "$1"
	or_level default
	levels=$(tail -n +"$((n0 + 1))" "$W/orthanc.log" |
		sed -n 's/.*DICOM C-Find request at level: \([A-Za-z]*\).*/\1/p' | sort | uniq -c)
	REQ[$1]=$(awk '{ s += $1 } END { print s + 0 }' <<<"$levels")
	BY[$1]=$(for l in Patient Study Series Instance; do
		awk -v l="$l" '$2 == l { printf "%d %s-level\n", $1, tolower(l) }' <<<"$levels"
	done | paste -sd, | sed 's/,/, /g')
	log "$1: ${REQ[$1]} C-FIND requests (${BY[$1]})"
}
# vsum NAME [ARGS...] : thlhp-make -v ARGS query on a copy of the project's
# state (a real run: -q and -n print no -v summary); its "query:" line in
# VSUM[NAME].
vsum() {
	local name=$1
	shift
	rm -rf "$W/vcopy"
	mkdir -p "$W/vcopy"
	cp -a "$NEWP/thlhp.ini" "$NEWP/full.ini" "$NEWP/.thlhp" "$W/vcopy/" || die "copying $NEWP's state"
	(cd "$W/vcopy" && "$THLHP" -v "$@" query) >"$W/vsum.log" 2>&1 || die "thlhp-make -v $* query failed: see $W/vsum.log"
	VSUM[$name]=$(sed -n 's/^thlhp-make: query: //p' "$W/vsum.log")
	log "$name: thlhp-make -v ${*:+$* }query says: ${VSUM[$name]}"
}
vtotal() { awk '{ print $1 }' <<<"$1"; }

log "counting each contender's requests (untimed runs, Orthanc's log at verbose)"
PROBLEMS=()
count same
vsum same
count full
vsum full -f full.ini
count old
count findscu
nresp=$(grep -c 'Find Response' "$LAST_LOG")
[ "$nresp" -eq "$NSTUDY" ] || die "findscu got $nresp answers, not $NSTUDY"
new_series_add 0
count new
vsum new
# -n names the new series as to download (the answer was read, not guessed).
"$THLHP" -C "$NEWP" -n >"$W/new-n.out" 2>&1
grep -q "^download .*$NEW_UID" "$W/new-n.out" || die "-n with a new series does not list its download: see $W/new-n.out"
new_series_delete || die "deleting the new series failed"
"$THLHP" -C "$NEWP" -q || die "-q after the new series was deleted: exit $? (not up to date)"
for c in same new full; do
	[ "$(vtotal "${VSUM[$c]}")" = "${REQ[$c]}" ] ||
		PROBLEMS+=("$c: Orthanc counted ${REQ[$c]} C-FINDs, thlhp-make -v says: ${VSUM[$c]}")
done
OLD_EXPECT=$((1 + NPAT + NSTUDY))
[ "${REQ[old]}" -eq "$OLD_EXPECT" ] ||
	PROBLEMS+=("$OLD_REV: Orthanc counted ${REQ[old]} C-FINDs, not 1 + patients + studies = $OLD_EXPECT")
[ "${REQ[findscu]}" -eq 1 ] || PROBLEMS+=("findscu: Orthanc counted ${REQ[findscu]} C-FINDs, not 1")
for p in "${PROBLEMS[@]}"; do log "problem: $p"; done

TITLE="Asking the PACS what changed"
wait_idle "$TITLE"
declare -A SECS CPUS PCPUS
for r in $(seq 1 "$RUNS"); do
	for c in $NAMES; do
		log "round $r: $c"
		[ "$c" = new ] && new_series_add "$r"
		p0=$(or_cpu)
		run_c "$c"
		PCPUS[$c]+=" $(awk -v a="$p0" -v b="$(or_cpu)" 'BEGIN { printf "%.2f", b - a }')"
		SECS[$c]+=" $WALL_LAST" CPUS[$c]+=" $CPU_LAST"
		[ "$c" = new ] && { new_series_delete || die "deleting the new series failed"; }
	done
done
load=$(load_note)
for c in $NAMES; do log "$c: wall ${SECS[$c]# } s; CPU ${CPUS[$c]# }; Orthanc CPU ${PCPUS[$c]# }"; done

# ---- the report ---------------------------------------------------------------

# shellcheck disable=SC2086  # the lists are words
med() { median ${SECS[$1]}; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "**missed**"; fi; }
# at600 N : how long N requests take at 600 a minute (10 a second)
at600() { awk -v n="$1" 'BEGIN { s = n / 10; if (s < 60) printf "%.1f s", s; else if (s < 3600) printf "%.1f min", s / 60; else printf "%.1f h", s / 3600 }'; }
comma() { printf '%d' "$1" | sed ':a; s/\B[0-9]\{3\}\>/,&/; ta'; }

echo "## $TITLE"
echo
echo "Orthanc on 127.0.0.1 holding $(comma "$NPAT") patients, $(comma "$NSTUDY") studies, $(comma "$NSERIES") series (one"
echo "small instance each); each contender asks it what \`[select] patient_id = $GLOB\`"
echo "covers, over DIMSE; median of $RUNS rounds, every contender once a round. Requests:"
echo "C-FINDs as Orthanc counted them (one untimed run of each, its log at verbose)."
echo "Every thlhp-make runs with \`max_requests_per_minute = 1000000\`, so that its"
echo "token bucket never waits: the times are the PACS's and the client's work alone."
echo
echo "| contender | requests (C-FIND) | median s | min - max s | x findscu | client CPU s | Orthanc CPU s |"
echo "|---|---|---:|---:|---:|---:|---:|"
for c in $NAMES; do
	# shellcheck disable=SC2086
	printf '| %s | %s (%s) | %s | %s | %s | %s | %s |\n' "${LABEL[$c]}" "$(comma "${REQ[$c]}")" "${BY[$c]}" \
		"$(fmt_s "$(med "$c")")" \
		"$(printf '%s\n' ${SECS[$c]} | sort -g | sed -n '1p;$p' | while read -r x; do fmt_s "$x"; echo; done | paste -sd- | sed 's/-/ - /')" \
		"$(ratio "$(med "$c")" "$(med findscu)")" \
		"$(printf '%.2f' "$(median ${CPUS[$c]})")" "$(printf '%.2f' "$(median ${PCPUS[$c]})")"
done
echo
extra=$((REQ[new] - REQ[same]))
echo "Targets: nothing changed, at most 1 + globs = $((1 + NGLOBS)) requests: $(verdict "${REQ[same]} <= 1 + $NGLOBS") (${REQ[same]});"
echo "and at most 2x the time of the one findscu: $(verdict "$(med same) <= 2 * $(med findscu)")"
echo "($(ratio "$(med same)" "$(med findscu)")x: $(fmt_s "$(med same)") s against $(fmt_s "$(med findscu)") s)."
echo "One new series, at most 3 more requests: $(verdict "$extra <= 3") ($extra more)."
echo "Against the last release's run with nothing changed: $(comma "${REQ[old]}") requests"
echo "become ${REQ[same]}, $(fmt_s "$(med old)") s become $(fmt_s "$(med same)") s ($(ratio "$(med old)" "$(med same)")x faster)."
echo
# The projection: the same studies and series per patient as here.
echo "Projected at the default \`max_requests_per_minute = 600\` (10 a second; the"
echo "token bucket spreads them evenly), with $(awk -v a="$NSTUDY" -v p="$NPAT" 'BEGIN { printf "%.2f", a / p }') studies and $(awk -v a="$NSERIES" -v p="$NPAT" 'BEGIN { printf "%.2f", a / p }') series a patient as here:"
echo "before, the full walk of every run (1 PATIENT-level + 1 STUDY-level a patient +"
echo "1 SERIES-level a study, as $OLD_REV made here); after, what this checkout made"
echo "here, which does not grow with the patients."
echo
echo "| patients | studies | series | before: requests a run | at 600/min | after, nothing changed | at 600/min | after, one new series | at 600/min |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for P in "$NPAT" 5000 50000; do
	st=$(awk -v a="$NSTUDY" -v p="$NPAT" -v q="$P" 'BEGIN { printf "%d", a * q / p + 0.5 }')
	se=$(awk -v a="$NSERIES" -v p="$NPAT" -v q="$P" 'BEGIN { printf "%d", a * q / p + 0.5 }')
	before=$((1 + P + st))
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$(comma "$P")" "$(comma "$st")" "$(comma "$se")" \
		"$(comma "$before")" "$(at600 "$before")" "${REQ[same]}" "$(at600 "${REQ[same]}")" \
		"${REQ[new]}" "$(at600 "${REQ[new]}")"
done
echo
echo "The one STUDY-level answer still grows with the studies: here $(comma "$NSTUDY") matches took"
echo "Orthanc and thlhp-make $(fmt_s "$(med same)") s in all, so about $(awk -v t="$(med same)" -v p="$NPAT" 'BEGIN { printf "%.1f", t * 5000 / p }') s at 5,000 patients and"
echo "$(awk -v t="$(med same)" -v p="$NPAT" 'BEGIN { printf "%.0f", t * 50000 / p }') s at 50,000 if it scales linearly (not paced: one request)."
echo
echo "- Requests: Orthanc's log (\`PUT /tools/log-level verbose\` for one untimed run of"
echo "  each command, a line \"DICOM C-Find request at level: X\" per C-FIND). thlhp-make's own"
echo "  \`-v\` summary of the same query (\`thlhp-make -v query\` on a copy of the state;"
echo "  with \`-q\` or \`-n\` it prints none): nothing changed \"${VSUM[same]}\"; one new series"
echo "  \"${VSUM[new]}\"; full walk \"${VSUM[full]}\"."
echo "  $OLD_REV's count is 1 + patients + studies = $(comma "$OLD_EXPECT"): $([ "${REQ[old]}" -eq "$OLD_EXPECT" ] && echo "as counted" || echo "**not** as counted")."
if [ "${#PROBLEMS[@]}" -gt 0 ]; then
	echo "- **Counts that disagree:** $(printf '%s; ' "${PROBLEMS[@]}" | sed 's/; $//')."
fi
echo "- thlhp-make, both: protocol = dimse, retrieve = get, max_associations = 2,"
echo "  max_requests_per_minute = 1000000, no TCP_NODELAY in the environment (it turns"
echo "  Nagle off itself); each project's archives built first (\`all\`), so \`-q\` exits 0"
echo "  (1 with the new series, which \`-n\` lists as to download: checked). This"
echo "  checkout's project had a full walk recorded (\`-B query\`) just before; \`-q\`"
echo "  records nothing, so every run asks the same. The new series: a fresh one each"
echo "  round (one instance) in patient 1's first study, uploaded before the run and"
echo "  deleted after. \`-f full.ini\`: the same settings plus \`full_query_every = 0\`."
echo "- $OLD_REV: built from \`git archive $OLD_REV\` with CFLAGS=-O2 (as"
echo "  \`tests/integration/t-upgrade.sh\` builds it), its own project and state (schema 3)."
echo "- findscu: DCMTK $(findscu --version 2>/dev/null | sed -n 's/.*findscu \(v[0-9.]*\).*/\1/p' | head -1), TCP_NODELAY=1,"
echo "  \`-S -k QueryRetrieveLevel=STUDY -k PatientID=$GLOB -k NumberOfStudyRelatedSeries"
echo "  -k NumberOfStudyRelatedInstances -k StudyInstanceUID\`, its answers (checked: $(comma "$NSTUDY")) to a file."
echo "- Wall time around each command (\`/usr/bin/time -v\`, about 1 ms of its own);"
echo "  client CPU: user + system of the command; Orthanc CPU: of the Orthanc process"
echo "  over the run (client and Orthanc share the $(nproc) cores; CPU seconds, unlike"
echo "  the wall time, do not grow when other work takes a core)."
echo "- Orthanc $(or_curl /system | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["Version"])'), SQLite index, default DicomThreadsCount, TCP_NODELAY=1; storage in $OR_DIR."
echo "- Data: \`tests/bench/gen_studies.py\`: patient p has 1 + p % 3 studies, study j"
echo "  1 + (p + j) % 3 series; one 1.9 KB CT instance a series. Scale: BENCH_SCALE=$BENCH_SCALE."
echo "- thlhp-make: $("$THLHP" --version 2>/dev/null | head -1), commit $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown), $THLHP."
echo "- Machine: $(machine)."
echo "- The $load. The whole script took $(fmt_s "$(sub "$EPOCHREALTIME" "$QUERY_T0")") s$([ -n "$QUERY_DID" ] && echo ", ${QUERY_DID%, } included" || echo " (data, builds, Orthanc's storage and the projects cached)")."
