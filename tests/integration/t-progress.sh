#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-progress: what a user sees.  On a terminal (a real one: a tmux pane,
# read with capture-pane while the run goes) one status line like ninja's,
# "[done/total] download PATIENT UID... n/N MB/s ETA", kept to the pane's
# width, and at the end a summary; into a pipe one plain line per finished
# job; --quiet prints nothing.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../orthanc.sh
source "$TESTS/orthanc.sh"

command -v tmux >/dev/null || { say "FAIL: tmux not found (apt-get install tmux)"; exit 1; }
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
	tmux capture-pane -p -t prog >>"$LOG/screens" 2>/dev/null
	[ -s "$LOG/tmux.rc" ] && break
	sleep 0.1
done
tmux capture-pane -p -t prog >"$LOG/final"
tmux kill-session -t prog
check "the run in the pane succeeded" "$(cat "$LOG/tmux.rc" 2>/dev/null)" "exit 0"
has_line "a status line showed a download with its instances: [n/N] download TH-... UID n/150" "$LOG/screens" \
	'^\[[0-9]+/[0-9]+\] download TH-0[12]-PR 2\.25\.[0-9]+.* [0-9]+/(150|12)( |$)'
has_line "... with MB/s once data flowed" "$LOG/screens" '^\[[0-9]+/[0-9]+\] download .* [0-9.]+ [kM]?B/s'
check "no screen line was longer than the pane (100 columns)" \
	"$(awk 'length($0) > 100' "$LOG/screens" | head -n 3)" ""
check "the status line is one line: the final screen holds no [n/N] job lines, one for each job" \
	"$(grep -c '^\[[0-9]*/[0-9]*\] ' "$LOG/final")" 0
has_line "the final screen ends with a summary of the jobs and the time" "$LOG/final" \
	'^thlhp-make: [0-9]+ jobs done in [0-9.]+s$'

section "into a pipe"
rm -rf data .thlhp
run -j2 all
exit_is "all into a pipe" 0
count_is "one line per finished job: 3 downloads" "$OUT" '^\[[0-9]+/[0-9]+\] download +TH-0[12]-PR 2\.25\.[0-9]+  (150|12) instances, [0-9.]+ MB$' 3
count_is "... 3 validations" "$OUT" '^\[[0-9]+/[0-9]+\] validate +TH-' 3
count_is "... 2 archives" "$OUT" '^\[[0-9]+/[0-9]+\] zip +data/zip/TH-0[12]-PR__seriesCount[12]\.zip' 2
no_line "no terminal escapes in a pipe" "$OUT" $'\033'
rm -rf data .thlhp
run --quiet -j2 all
exit_is "--quiet all" 0
is_empty "--quiet prints nothing on stdout" "$OUT"
is_empty "... nor on stderr" "$ERR"

finish
