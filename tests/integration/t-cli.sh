#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119  # ${NAME} is literal config text; write_config takes optional args
# t-cli: --help, --version, -t list, -t init, bad options and targets, -C, -f.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"

gen --patient TH-01-AA --series 2 --instances 2 --seed a
gen --patient TH-02-BB --series 1 --instances 2 --seed b

section "--help and --version"
run --help
exit_is "thlhp-make --help" 0
for o in -f --file -C --directory -n --dry-run -q --question -j --jobs -B --always-make \
	-k --keep-going --offline -v --verbose --quiet -t --version -h --help; do
	has_line "--help mentions $o" "$OUT" "(^|[^-[:alnum:]])$o([^-[:alnum:]]|\$)"
done
run -h
exit_is "thlhp-make -h" 0
has_line "-h prints the usage too" "$OUT" '--dry-run'
run --version
exit_is "thlhp-make --version" 0
has_line "--version names the program and a version number" "$OUT" 'thlhp-make.*[0-9]+\.[0-9]+'

section "-t list"
run -t list
exit_is "thlhp-make -t list" 0
for t in clean init list; do
	has_line "-t list lists the tool '$t'" "$OUT" "(^|[[:space:]])$t([[:space:]:]|\$)"
done

section "-t init"
run -t init
exit_is "thlhp-make -t init in an empty folder" 0
ok "-t init wrote ./thlhp.ini" test -s thlhp.ini
has_line "the sample thlhp.ini has comments" thlhp.ini '^[[:space:]]*[;#]'
for s in pacs select output state; do
	has_line "the sample thlhp.ini has a [$s] section" thlhp.ini "^\\[$s\\]"
done
cp thlhp.ini "$LOG/sample.ini"
# Point the sample at the folder source: drop its protocol/path lines from
# [pacs] and put ours right under the header.
awk -v src="$SRC" '
	/^\[/ { sec = $0; print; if (sec == "[pacs]") { print "protocol = folder"; print "path = " src }; next }
	sec == "[pacs]" && /^[[:space:]]*(protocol|path)[[:space:]]*=/ { next }
	{ print }' "$LOG/sample.ini" >thlhp.ini
run -n
exit_is "thlhp-make -n accepts the sample thlhp.ini once protocol = folder and path are set" 0
has_line "-n with the sample config lists TH-01-AA's downloads" "$OUT" '^download[[:space:]]+TH-01-AA '
cp thlhp.ini "$LOG/edited.ini"
run -t init
exit_is "thlhp-make -t init refuses to overwrite an existing thlhp.ini" 2
has_line "the refusal names thlhp.ini" "$ERR" 'thlhp\.ini'
ok "the existing thlhp.ini is unchanged" cmp -s thlhp.ini "$LOG/edited.ini"

section "bad options and targets"
write_config
run --no-such-option
exit_is "an unknown option" 2
has_line "the error names the unknown option" "$ERR" 'no-such-option'
run -j
exit_is "-j without a number" 2
run -j abc
exit_is "-j abc" 2
run frobnicate
exit_is "an unknown target" 2
has_line "the error names the unknown target" "$ERR" 'frobnicate'
run bogus:TH-01-AA
exit_is "an unknown stage in STAGE:PATIENT" 2
has_line "the error names the unknown stage" "$ERR" 'bogus'
run zip:NO-SUCH-PATIENT
exit_is "zip:PATIENT for a patient that is not in the catalog" 2
has_line "the error names the patient" "$ERR" 'NO-SUCH-PATIENT'
run -t no-such-tool
exit_is "an unknown tool" 2
has_line "the error names the unknown tool" "$ERR" 'no-such-tool'
check "none of the failed commands wrote an archive" "$(find . -name '*.zip')" ""

section "-C and -f"
cd "$T" || exit 1
run -C "$PROJ" -q
exit_is "-C DIR -q runs in DIR (stale: nothing built yet)" 1
run -C "$PROJ" all
exit_is "thlhp-make -C proj all" 0
ok "-C: archives appear under DIR/data/zip" test -f "$PROJ/data/zip/TH-01-AA__seriesCount2.zip"
ok "-C: the state lives under DIR/.thlhp" test -f "$PROJ/.thlhp/state.db"
check "-C: nothing was written in the folder thlhp-make was started from" \
	"$(find "$T" -mindepth 1 -maxdepth 1 ! -name proj ! -name log)" ""
run --directory="$PROJ" -q
exit_is "--directory=DIR -q on the built tree" 0

mkdir -p "$T/other" && cd "$T/other" || exit 1
write_config output.zip_dir=zips output.dicom_dir=dcm
mv thlhp.ini "$T/custom.ini"
run -f "$T/custom.ini" all
exit_is "thlhp-make -f /abs/custom.ini all" 0
ok "-f: relative paths in the config are taken from the working directory" \
	test -f zips/TH-02-BB__seriesCount1.zip
ok "-f: dicom_dir from the config" test -d dcm/TH-02-BB
run --file "$T/custom.ini" -q
exit_is "--file FILE -q on the built tree" 0
cp "$T/custom.ini" ./my.ini
run -f my.ini -q
exit_is "-f with a relative file name" 0
run -q
exit_is "without -f and no ./thlhp.ini" 2
has_line "the error names the missing thlhp.ini" "$ERR" 'thlhp\.ini'

section "no configured string ever reaches a shell"
nm -D --undefined-only "$THLHP" | awk '{ print $NF }' | sed 's/@.*//' >"$LOG/imports"
# The programs of [rule NAME]s run by posix_spawnp, with their words as
# argv (src/spawn.c; t-rules): nothing else starts a program, and nothing
# at all goes through a shell.
check "thlhp-make imports no system(), popen(), exec*(), posix_spawn() or fork()" \
	"$(grep -Ex 'system|popen|execl|execlp|execle|execv|execvp|execve|execvpe|fexecve|posix_spawn|v?fork' "$LOG/imports")" ""
ok "... posix_spawnp, for [rule NAME]s only" grep -qx posix_spawnp "$LOG/imports"
ok "... (and nm did list its imports: it uses open())" grep -qx open "$LOG/imports"

finish
