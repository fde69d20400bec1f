#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-noop: after a full run, running again changes nothing, -q says up to date
# and -n lists nothing.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

standard_source
write_config
run -j2 all
exit_is "the first full run succeeds" 0
has_line "the first run prints its jobs as \"[k/n] zip ...\" (what the second must not)" "$OUT" \
	'^\[[0-9]+/[0-9]+\] +zip '
[ "$RC" -eq 0 ] || finish

files_before=$(file_state data)
tree_before=$(tree_state data)
state_before=$(state_sum)

section "second all"
run -j2 all
exit_is "a second thlhp-make all succeeds" 0
check "a second all rewrites no file under data/ (inode, size, mtime to the ns of every archive and DICOM file)" \
	"$(file_state data)" "$files_before"
check "a second all touches no folder under data/ (folder mtimes unchanged: no temp file was even created)" \
	"$(tree_state data)" "$tree_before"
no_line "a second all runs no download, validate or zip job (no \"[k/n] download ...\" line)" "$OUT" \
	'^\[[0-9]+/[0-9]+\] +(download|validate|zip) '
has_line "... and says there is nothing to do" "$OUT" '^thlhp-make: nothing to do: everything is up to date$'

section "-q"
run -q
exit_is "thlhp-make -q on an up-to-date tree" 0
is_empty "thlhp-make -q prints nothing on stdout" "$OUT"
is_empty "thlhp-make -q prints nothing on stderr" "$ERR"

section "-n"
run -n
exit_is "thlhp-make -n on an up-to-date tree" 0
no_line "thlhp-make -n lists no stale target (no query/download/validate/zip line)" "$OUT" \
	'^(query|download|validate|zip)[[:space:]]'
check "thlhp-make -n leaves data/ alone" "$(tree_state data)" "$tree_before"
check "thlhp-make -n leaves the state database alone (sha256 of .thlhp/state.db)" "$(state_sum)" "$state_before"

section "offline"
run --offline -q
exit_is "thlhp-make --offline -q on an up-to-date tree" 0
run --offline all
exit_is "thlhp-make --offline all on an up-to-date tree" 0
check "thlhp-make --offline all rewrites nothing" "$(tree_state data)" "$tree_before"

finish
