#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-progress: what a user sees.  On a terminal (a real one: a tmux pane,
# read with capture-pane while the run goes) a line per finished job that
# stays, and below them one status line like ninja's, "[done/total]
# download PATIENT #N description... n/N MB/s ETA"; every line cut to the
# pane's width (at 100 and at 80 columns), and at the end a summary naming
# the archives built; into a pipe one plain line per finished job and a
# summary with a timestamp; --quiet prints nothing.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../orthanc.sh
source "$TESTS/orthanc.sh"

command -v tmux >/dev/null || { say "FAIL: tmux not found (apt-get install tmux)"; exit 1; }

# longer_than N FILE : the lines of FILE longer than N characters (not bytes).
longer_than() {
	local line
	while IFS= read -r line; do
		[ "${#line}" -le "$1" ] || printf '%s\n' "$line"
	done <"$2"
}
RETRIEVE=get
# Big enough series that a C-GET lasts long enough for the line to show
# its rate.
gen --patient TH-01-PR --studies 1 --series 2 --instances 150 --seed p1
gen --patient TH-02-PR --studies 1 --series 1 --instances 12 --seed p2
orthanc_start
orthanc_upload "$SRC"
# Slow enough to watch: one request a second (each series is a C-FIND and
# a C-GET per instance it lacks... here one C-GET for the series).
write_dimse_config pacs.max_requests_per_minute=40 'select.patient_id=TH-*'

section "on a terminal (tmux)"
export TMUX_TMPDIR=$T
tmux -f /dev/null new-session -d -s prog -x 100 -y 30 \
	"cd '$PROJ' && '$THLHP' -j1 all; echo \"exit \$?\" >'$LOG/tmux.rc'; sleep 600"
BGPIDS="$BGPIDS $(tmux display-message -p -t prog '#{pid}')"
: >"$LOG/screens"
for _ in $(seq 1 600); do
	tmux capture-pane -p -J -t prog 2>/dev/null | sed "s/ *$//" >>"$LOG/screens"
	[ -s "$LOG/tmux.rc" ] && break
	sleep 0.1
done
tmux capture-pane -p -J -t prog | sed "s/ *$//" >"$LOG/final"
tmux kill-session -t prog
check "the run in the pane succeeded" "$(cat "$LOG/tmux.rc" 2>/dev/null)" "exit 0"
has_line "a status line showed a download with its instances: [n/N] download TH-... #N n/150" "$LOG/screens" \
	'^\[[0-9]+/[0-9]+\] download TH-0[12]-PR #[0-9]+ [0-9]+/(150|12)( |$)'
has_line "... with MB/s once data flowed" "$LOG/screens" '^\[[0-9]+/[0-9]+\] download .* [0-9.]+ [kM]?B/s'
check "no screen line was longer than the pane (100 columns; wrapped lines joined)" \
	"$(longer_than 100 "$LOG/screens" | head -n 3)" ""
count_is "the final screen keeps a line for each finished job: 3 downloads" "$LOG/final" \
	'^\[[0-9]+/8\] download +TH-0[12]-PR #[12]  (150|12) instances, [0-9.]+ [kM]B$' 3
count_is "... and the 2 archives" "$LOG/final" '^\[[0-9]+/8\] zip +data/zip/TH-0[12]-PR__seriesCount[12]\.zip  ' 2
has_line "the final screen ends with a summary of the jobs and the time" "$LOG/final" \
	'^thlhp-make: 8 jobs done in [0-9.]+s \(3 download, 3 validate, 2 zip\)$'
has_line "... and the archives built" "$LOG/final" \
	'^2 archives built: TH-0[12]-PR__seriesCount[12]\.zip, TH-0[12]-PR__seriesCount[12]\.zip$'

section "into a pipe"
rm -rf data .thlhp
run -j2 all
exit_is "all into a pipe" 0
count_is "one line per finished job: 3 downloads" "$OUT" '^\[[0-9]+/[0-9]+\] download +TH-0[12]-PR #[12]  (150|12) instances, [0-9.]+ [kM]B$' 3
count_is "... 3 validations" "$OUT" '^\[[0-9]+/[0-9]+\] validate +TH-' 3
count_is "... 2 archives" "$OUT" '^\[[0-9]+/[0-9]+\] zip +data/zip/TH-0[12]-PR__seriesCount[12]\.zip' 2
no_line "no terminal escapes in a pipe" "$OUT" $'\033'
has_line "the last line, for a log, says when, what ran and the archives built" "$OUT" \
	'^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}[-+][0-9]{4} thlhp-make: 8 jobs done in [0-9.]+s \(3 download, 3 validate, 2 zip\); 2 archives built: TH-0[12]-PR__seriesCount[12]\.zip, TH-0[12]-PR__seriesCount[12]\.zip$'
check "... as the last line" "$(tail -n 1 "$OUT" | grep -c 'archives built')" 1
rm -rf data .thlhp
run --quiet -j2 all
exit_is "--quiet all" 0
is_empty "--quiet prints nothing on stdout" "$OUT"
is_empty "... nor on stderr" "$ERR"

section "on a terminal 80 columns wide, with long names (folder source)"
long=TH-04-A-PATIENT-ID-LONG-ENOUGH-TO-FILL-MOST-OF-AN-EIGHTY-COLUMN-LINE
gen --outdir "$T/src80" --patient "$long" --series 2 --instances 2 --seed p4 \
	--series-description 'Thorax 1.0 B31f, a description long enough to reach the edge'
gen --outdir "$T/src80" --patient TH-05-PR --series 1 --instances 1 --seed p5
mkdir -p "$T/p80" && cd "$T/p80" || exit 1
write_config "pacs.path=$T/src80"
tmux -f /dev/null new-session -d -s p80 -x 80 -y 30 \
	"cd '$T/p80' && '$THLHP' -j1 all; echo \"exit \$?\" >'$LOG/tmux80.rc'; sleep 600"
BGPIDS="$BGPIDS $(tmux display-message -p -t p80 '#{pid}')"
for _ in $(seq 1 300); do
	[ -s "$LOG/tmux80.rc" ] && break
	sleep 0.1
done
tmux capture-pane -p -J -t p80 | sed "s/ *$//" >"$LOG/final80"
tmux kill-session -t p80
check "the run in the 80-column pane succeeded" "$(cat "$LOG/tmux80.rc" 2>/dev/null)" "exit 0"
check "no line was longer than 80 columns (wrapped lines joined)" "$(longer_than 80 "$LOG/final80")" ""
count_is "each finished job kept its line: 3 downloads, cut with an ellipsis where long" "$LOG/final80" \
	'^\[[0-9]+/8\] download +TH-0[45]-' 3
has_line "... a long one ends in an ellipsis" "$LOG/final80" '^\[[0-9]+/8\] download +TH-04-A-PATIENT-ID-.*…$'
count_is "... and both archives' lines are there, not overwritten" "$LOG/final80" '^\[[0-9]+/8\] zip +data/zip/TH-0[45]-' 2
has_line "the summary names the archives built, cut to the width too" "$LOG/final80" \
	'^2 archives built: TH-0[45]-'
has_line "... after the count of jobs by stage" "$LOG/final80" \
	'^thlhp-make: 8 jobs done in [0-9.]+s \(3 download, 3 validate, 2 zip\)$'

finish
