#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-wait: two runs from cron overlap on one SQLite state.  The second says
# who holds it and exits 2, or with --wait waits for the first and then
# does what is left.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

standard_source
write_config
run query
exit_is "query" 0
# The first run, frozen while it holds the state.
run_bg -j1 all
FIRST=$BGPID
for _ in $(seq 1 100); do grep -q "pid $FIRST " .thlhp/state.db.lock 2>/dev/null && break; sleep 0.05; done
kill -STOP "$FIRST"
check "the first run holds the state (the lock file names it)" \
	"$(cut -d' ' -f1,2 .thlhp/state.db.lock)" "pid $FIRST"
OUT=$LOG/second.out ERR=$LOG/second.err

run all
exit_is "a second run while the first holds the state" 2
has_line "it says who holds it and what to do" "$ERR" \
	"state in use by pid $FIRST on host .*; wait for it to finish \(or run with --wait\)"

"$THLHP" --wait all >"$OUT" 2>"$ERR" </dev/null &
W=$!
BGPIDS="$BGPIDS $W"
sleep 1
ok "with --wait the second run is still waiting a second later" kill -0 "$W"
has_line "... and says whom it waits for" "$ERR" "state in use by pid $FIRST on host .*; waiting for it to finish \(--wait\)"
kill -CONT "$FIRST"
wait "$FIRST"
RC=$?
exit_is "the first run, let go, finishes" 0
wait "$W"
RC=$?
exit_is "the waiting run then runs" 0
ok "every archive is right" archives_match
run -q
exit_is "-q afterwards" 0

finish
