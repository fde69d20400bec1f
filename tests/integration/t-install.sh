#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-install: `make install` into a staging root puts the program, its man
# page and its bash completion where users look for them; the man page
# documents every option and tool of --help; the completion offers tools,
# options and the catalog's patients; the examples' configs are accepted;
# `make uninstall` takes it all away again.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

BUILD=$(cd "$(dirname "$THLHP")" && pwd)
[ -f "$BUILD/Makefile" ] || { say "FAIL: $BUILD has no Makefile (THLHP must be the build's thlhp-make)"; exit 1; }
ROOT=$T/root
TOP=$(cd "$TESTS/.." && pwd)

section "make install"
make -C "$BUILD" install DESTDIR="$ROOT" prefix=/usr/local >"$LOG/install.log" 2>&1
check "make install DESTDIR=... prefix=/usr/local succeeds" "$?" 0
BIN=$ROOT/usr/local/bin/thlhp-make MAN=$ROOT/usr/local/share/man/man1/thlhp-make.1
COMP=$ROOT/usr/local/share/bash-completion/completions/thlhp-make
ok "the program is in bin/ and runs" "$BIN" --version
ok "the man page is in share/man/man1/" test -s "$MAN"
ok "the README it points to is in share/doc/thlhp-make/" test -s "$ROOT/usr/local/share/doc/thlhp-make/README.md"
ok "the bash completion is in share/bash-completion/completions/thlhp-make" test -s "$COMP"

section "the man page matches --help"
nroff -man "$MAN" 2>"$LOG/nroff.err" | sed 's/.\x08//g' >"$LOG/man.txt"
is_empty "nroff renders it without a warning" "$LOG/nroff.err"
has_line "it has a NAME section naming thlhp-make" "$LOG/man.txt" '^NAME'
"$BIN" --help >"$LOG/help.txt"
missing=
for opt in $(grep -oE -- '--[a-z][a-z-]+' "$LOG/help.txt" | sort -u) \
	$(grep -oE -- '^  -[a-zA-Z],' "$LOG/help.txt" | tr -d ' ,'); do
	grep -qE -- "(^|[ ,])$opt([ ,]|$)" "$LOG/man.txt" || missing="$missing $opt"
done
check "every option of --help is in the man page" "$missing" ""
missing=
for tool in $("$BIN" -t list | awk 'NR > 1 && /^  [a-z]/ { print $1 }'); do
	grep -qE "^       $tool( |$)" "$LOG/man.txt" || missing="$missing $tool"
done
check "every tool of -t list is in the man page's TOOLS" "$missing" ""
for t in all query download validate zip; do
	grep -qE "^       ([a-z, ]*, )?$t(,|$| )" "$LOG/man.txt" || missing="$missing $t"
done
check "every target of --help is in the man page's TARGETS" "$missing" ""

section "bash completion"
standard_source
write_config
run -j2 all
exit_is "a built project to complete in" 0
# complete WORD... : what the completion offers for the last word.
complete_line() {
	PATH=$ROOT/usr/local/bin:$PATH bash -c '
		source /usr/share/bash-completion/bash_completion
		source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		_thlhp_make
		printf "%s\n" "${COMPREPLY[@]}" | sort' bash "$COMP" "$@"
}
check "after -t: every tool of -t list" "$(complete_line thlhp-make -t '')" \
	"$("$BIN" -t list | awk 'NR > 1 && /^  [a-z]/ { print $1 }' | sort)"
has_line "--dr completes to --dry-run" <(complete_line thlhp-make --dr) '^--dry-run$'
complete_line thlhp-make '' >"$LOG/targets"
has_line "a bare word: the target all" "$LOG/targets" '^all$'
has_line "... and the catalog's patients" "$LOG/targets" '^TH-02-BB$'
has_line "... and STAGE:PATIENT" "$LOG/targets" '^zip:TH-02-BB$'
check "TH-0 completes to the three selected patients" "$(complete_line thlhp-make TH-0)" \
	"$(printf '%s\n' TH-01-AA TH-02-BB TH-03-CC)"
check "--format takes table, csv or jsonl" "$(complete_line thlhp-make -t status --format '')" "$(printf '%s\n' csv jsonl table)"

section "the examples"
cp "$TOP"/examples/thlhp-*.ini "$T/" && : >"$T/participants.txt"
sed -i "s|^patients_file = .*|patients_file = $T/participants.txt|" "$T/thlhp-dicomweb.ini"
for ini in "$T"/thlhp-*.ini; do
	DICOMWEB_TOKEN=x THLHP_PING_UUID=x run -f "$ini" --offline -n
	exit_is "examples/$(basename "$ini") is a valid config (--offline -n)" 0
done
for f in crontab thlhp-make.service; do
	ok "examples/$f runs thlhp-make all" grep -q 'thlhp-make .*all' "$TOP/examples/$f"
done
ok "examples/thlhp-make.timer starts it hourly" grep -q '^OnCalendar=hourly' "$TOP/examples/thlhp-make.timer"

section "make uninstall"
make -C "$BUILD" uninstall DESTDIR="$ROOT" prefix=/usr/local >"$LOG/uninstall.log" 2>&1
check "make uninstall succeeds" "$?" 0
check "... and leaves no file behind" "$(find "$ROOT" -type f)" ""

finish
