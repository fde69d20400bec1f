# tests/lib.sh - sourced by every tests/integration/t-*.sh.
#
# Gives each scenario a private temp dir ($T, removed on exit), a project dir
# inside it ($PROJ, the working directory thlhp-make runs in), a generator of
# real DICOM series (gen), a writer for a folder-source thlhp.ini
# (write_config), a runner that keeps the last stdout/stderr/exit status (run),
# and assertions that print one PASS/FAIL line each (ok, fails, check,
# exit_is, has_line, no_line).  A scenario ends with `finish`, which exits 1
# when any assertion failed.  THLHP_KEEP=1 keeps $T for a post-mortem.
# shellcheck shell=bash

set -u
export LC_ALL=C.UTF-8 TZ=UTC

THLHP=${THLHP:-/work/main/_build/thlhp-make}
TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3                     # Debian's python3-pydicom lives here
NAME=$(basename "$0" .sh)

T=$(mktemp -d "${TMPDIR:-/tmp}/thlhp-$NAME.XXXXXX")
LOG=$T/log                              # our own files, never inspected as output
PROJ=$T/proj                            # where thlhp-make runs
SRC=$PROJ/source                        # the folder "PACS"
MANIFEST=$LOG/manifest.tsv              # what gen made: series/instance lines
mkdir -p "$LOG" "$PROJ" "$SRC"
: >"$MANIFEST"

NFAIL=0 NPASS=0 BGPIDS=
RC=0 OUT=$LOG/stdout ERR=$LOG/stderr

lib_cleanup() {
	local p
	for p in $BGPIDS; do kill -9 -- "-$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "${THLHP_KEEP:-0}" = 1 ]; then
		echo "kept $T"
	else
		rm -rf "$T"
	fi
}
trap lib_cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -x "$THLHP" ]; then
	echo "FAIL: $THLHP is not an executable (build it first, or set THLHP)"
	exit 1
fi
if ! "$PY" -c 'import pydicom' 2>/dev/null; then
	echo "FAIL: $PY cannot import pydicom (apt-get install python3-pydicom)"
	exit 1
fi

# ---- output and assertions ---------------------------------------------

say() { printf '%s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }

pass() { NPASS=$((NPASS + 1)); printf 'PASS: %s\n' "$1"; }
fail() { NFAIL=$((NFAIL + 1)); printf 'FAIL: %s\n' "$1"; }

# Show the last thlhp-make run (after a failed assertion about it).
show_run() {
	printf '    last run: %s -> exit %s\n' "$LASTCMD" "$RC"
	sed -n '1,25s/^/    stdout| /p' "${LASTOUT:-$OUT}"
	sed -n '1,25s/^/    stderr| /p' "${LASTERR:-$ERR}"
}

# ok DESC CMD... : CMD succeeds.
ok() {
	local d=$1; shift
	if "$@"; then pass "$d"; else fail "$d"; say "    command failed: $*"; fi
}

# fails DESC CMD... : CMD fails.
fails() {
	local d=$1; shift
	if "$@"; then fail "$d"; say "    command succeeded: $*"; else pass "$d"; fi
}

# check DESC ACTUAL EXPECTED : two strings are equal (shows a diff if not).
check() {
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		fail "$1"
		diff <(printf '%s\n' "$3") <(printf '%s\n' "$2") | sed -n '1,30s/^/    /p'
		say "    (< expected, > actual)"
	fi
}

# exit_is DESC N : the last run exited N.
exit_is() {
	if [ "$RC" -eq "$2" ]; then pass "$1 (exit $2)"; else fail "$1 (exit $RC, want $2)"; show_run; fi
}

# has_line DESC FILE ERE : some line of FILE matches ERE.
has_line() {
	if grep -Eq -- "$3" "$2"; then pass "$1"; else
		fail "$1"; say "    no line of $(basename "$2") matches: $3"; show_run
	fi
}

# no_line DESC FILE ERE : no line of FILE matches ERE.
no_line() {
	if grep -Eq -- "$3" "$2"; then
		fail "$1"; say "    unexpected:"; grep -E -- "$3" "$2" | sed -n '1,10s/^/    | /p'
	else pass "$1"; fi
}

# count_is DESC FILE ERE N : exactly N lines of FILE match ERE.
count_is() {
	local n
	n=$(grep -Ec -- "$3" "$2")
	if [ "$n" -eq "$4" ]; then pass "$1"; else
		fail "$1 ($n lines match, want $4)"; say "    pattern: $3"; show_run
	fi
}

# is_empty DESC FILE : FILE has no bytes.
is_empty() {
	if [ ! -s "$2" ]; then pass "$1"; else fail "$1"; sed -n '1,10s/^/    | /p' "$2"; fi
}

finish() {
	printf '\n%s: %d passed, %d failed\n' "$NAME" "$NPASS" "$NFAIL"
	[ "$NPASS" -gt 0 ] || { say "FAIL: no assertion ran"; exit 1; }
	[ "$NFAIL" -eq 0 ] || exit 1
	exit 0
}

# ---- running the tool --------------------------------------------------

# What show_run shows: the last command, its status and output files.
LASTCMD='' LASTOUT='' LASTERR=''
# run ARGS... : thlhp-make in the cwd; stdout -> $OUT, stderr -> $ERR, status -> $RC.
run() {
	LASTCMD="thlhp-make $*" LASTOUT=$OUT LASTERR=$ERR
	"$THLHP" "$@" >"$OUT" 2>"$ERR" </dev/null
	RC=$?
	say "  \$ $LASTCMD -> exit $RC"
	return 0
}

# run_bg ARGS... : start thlhp-make in the background as the leader of its
# own process group (so kill_bg takes any helper processes too, like a
# crash); sets BGPID.
run_bg() {
	LASTCMD="thlhp-make $* &" LASTOUT=$OUT LASTERR=$ERR
	setsid "$THLHP" "$@" >"$OUT" 2>"$ERR" </dev/null &
	BGPID=$!
	BGPIDS="$BGPIDS $BGPID"
}

# kill_bg : kill -9 the background thlhp-make and its process group, reap it.
# Returns 0 if it was still running.
kill_bg() {
	local alive=1
	kill -0 "$BGPID" 2>/dev/null && alive=0
	kill -9 -- "-$BGPID" 2>/dev/null || kill -9 "$BGPID" 2>/dev/null
	wait "$BGPID" 2>/dev/null
	return $alive
}

# ---- generating DICOM --------------------------------------------------

# gen ARGS... : gen_series.py into $SRC (unless ARGS name another OUTDIR with
# --outdir DIR first); its series/instance lines go to $MANIFEST.
gen() {
	local outdir=$SRC
	if [ "${1:-}" = --outdir ]; then outdir=$2; shift 2; fi
	"$PY" "$TESTS/gen_series.py" "$outdir" "$@" >>"$MANIFEST" ||
		{ say "FAIL: gen_series.py $* failed"; exit 1; }
}

# Manifest queries.  Patient IDs never hold tabs, so awk -F'\t' is exact.
series_of() {     # series_of PID : series UIDs, in generation order
	awk -F'\t' -v p="$1" '$1 == "series" && $2 == p { print $4 }' "$MANIFEST"
}
study_of() {      # study_of PID : the first study UID of PID
	awk -F'\t' -v p="$1" '$1 == "series" && $2 == p { print $3; exit }' "$MANIFEST"
}
nseries() {       # nseries PID : how many series PID has in the source
	series_of "$1" | sort -u | wc -l
}
entries_of() {    # entries_of PID : the sorted zip entries PID's archive must hold
	awk -F'\t' -v p="$1" '$1 == "instance" && $2 == p { print $3 "/" $4 "/" $5 ".dcm" }' "$MANIFEST" | sort
}
instances_of() {  # instances_of PID : "study series sop srcpath" lines
	awk -F'\t' -v p="$1" '$1 == "instance" && $2 == p { print $3 "\t" $4 "\t" $5 "\t" $6 }' "$MANIFEST"
}
instances_of_series() { # instances_of_series SERIESUID : "study series sop srcpath"
	awk -F'\t' -v s="$1" '$1 == "instance" && $4 == s { print $3 "\t" $4 "\t" $5 "\t" $6 }' "$MANIFEST"
}
patients() {      # every PatientID generated so far
	awk -F'\t' '$1 == "series" { print $2 }' "$MANIFEST" | sort -u
}

# enc PID : the file name SPEC.md promises for PID: bytes outside
# [A-Za-z0-9._-] become %XX (upper case), and a leading '.' becomes %2E.
enc() {
	local hex out='' b c
	hex=$(printf '%s' "$1" | od -An -v -tx1)
	for b in $hex; do
		c=$(printf '%b' "\\x$b")
		case $b in
		2d|2e|5f|3[0-9]|4[1-9a-f]|5[0-9a]|6[1-9a-f]|7[0-9a]) out+=$c ;;
		*) out+=%$(printf '%s' "$b" | tr a-f A-F) ;;
		esac
	done
	case $out in .*) out=%2E${out#.} ;; esac
	printf '%s\n' "$out"
}

# archive_of PID [N] : path of PID's archive with N series (default: all of them).
archive_of() {
	printf '%s\n' "data/zip/$(enc "$1")__seriesCount${2:-$(nseries "$1")}.zip"
}

# ---- config ------------------------------------------------------------

# write_config [SECTION.KEY=VALUE]... : ./thlhp.ini for the folder source
# $SRC, with the defaults below; an override replaces a default, an empty
# value drops the key, a new key is added to its section.
write_config() {
	local -A val=()
	local order="pacs.protocol pacs.path select.patient_id output.dicom_dir output.zip_dir"
	order="$order output.compression output.level output.keep_old state.url"
	val[pacs.protocol]=folder
	val[pacs.path]=$SRC
	val[select.patient_id]='TH-*'
	val[output.dicom_dir]=data/dicom
	val[output.zip_dir]=data/zip
	val[output.compression]=deflate
	val[output.level]=1
	val[output.keep_old]=no
	val[state.url]=sqlite:.thlhp/state.db
	local a k
	for a in "$@"; do
		k=${a%%=*}
		case " $order " in *" $k "*) ;; *) order="$order $k" ;; esac
		val[$k]=${a#*=}
	done
	local sec last=
	{
		for sec in pacs select output state notify kobo; do
			for k in $order; do
				[ "${k%%.*}" = "$sec" ] || continue
				[ -n "${val[$k]}" ] || continue
				if [ "$last" != "$sec" ]; then
					[ -z "$last" ] || echo
					echo "[$sec]"
					last=$sec
				fi
				echo "${k#*.} = ${val[$k]}"
			done
		done
	} >thlhp.ini
}

# ---- looking at results ------------------------------------------------

zip_list() {      # zip_list ZIP : its entry names, sorted
	unzip -Z1 "$1" 2>/dev/null | sort
}
zip_names() {     # the archive file names in data/zip, sorted (like the glob
	# data/zip/*.zip: hidden names, i.e. .thlhp-tmp-* temp files, are not archives)
	find data/zip -maxdepth 1 -type f -name '*.zip' ! -name '.*' -printf '%f\n' 2>/dev/null | sort
}
mtime() {         # mtime FILE : modification time with nanoseconds
	stat -c %.9Y "$1"
}
ident() {         # ident FILE : inode, size and ns mtime - changes when FILE is rewritten
	stat -c '%i %s %.9Y' "$1" 2>/dev/null || echo missing
}
tree_state() {    # tree_state DIR : every entry with type, inode, size, ns mtime
	find "$1" -printf '%y %i %s %T@ %P\n' 2>/dev/null | sort -k5
}
file_state() {    # file_state DIR : like tree_state, regular files only
	find "$1" -type f -printf '%i %s %T@ %P\n' 2>/dev/null | sort -k4
}
temp_files() {    # temp_files DIR : leftovers of interrupted jobs
	find "$1" \( -name '.thlhp-*' -o -name '*.tmp*' \) -print 2>/dev/null
}
zip_ok() {        # zip_ok ZIP : unzip -t passes
	unzip -tqq "$1" >/dev/null 2>&1
}
all_zips_ok() {   # all_zips_ok DIR : every *.zip below DIR (not hidden temp files) passes unzip -t
	local z bad=0
	while IFS= read -r -d '' z; do
		zip_ok "$z" || { say "    unzip -t failed: $z"; bad=1; }
	done < <(find "$1" -name '*.zip' ! -name '.*' -print0 2>/dev/null)
	return $bad
}
state_sum() {     # checksum of the state database
	sha256sum .thlhp/state.db 2>/dev/null | cut -d' ' -f1
}

# zip_matches_source ZIP PID : every entry of ZIP is byte-identical to the
# generated source file of that SOP, and ZIP holds exactly PID's entries.
zip_matches_source() {
	local zip=$1 pid=$2 x st se sop src bad=0
	x=$(mktemp -d "$LOG/x.XXXXXX")
	unzip -qq "$zip" -d "$x" >/dev/null 2>&1 || { say "    cannot extract $zip"; return 1; }
	[ "$(cd "$x" && find . -type f | sed 's|^\./||' | sort)" = "$(entries_of "$pid")" ] ||
		{ say "    $zip: entries differ from the generated instances"; bad=1; }
	while IFS=$'\t' read -r st se sop src; do
		cmp -s "$src" "$x/$st/$se/$sop.dcm" ||
			{ say "    $zip: $st/$se/$sop.dcm differs from $src"; bad=1; }
	done < <(instances_of "$pid")
	rm -rf "$x"
	return $bad
}

# dicom_matches_source PID : dicom_dir holds exactly PID's instances, each
# byte-identical to the generated file.
dicom_matches_source() {
	local pid=$1 d st se sop src bad=0 want have
	d=data/dicom/$(enc "$pid")
	want=$(entries_of "$pid")
	have=$(cd "$d" 2>/dev/null && find . -type f | sed 's|^\./||' | sort)
	[ "$have" = "$want" ] || { say "    $d: files differ from the generated instances"; bad=1; }
	while IFS=$'\t' read -r st se sop src; do
		cmp -s "$src" "$d/$st/$se/$sop.dcm" || { say "    $d/$st/$se/$sop.dcm differs from $src"; bad=1; }
	done < <(instances_of "$pid")
	return $bad
}

# standard_source : the three projects patients of the issue plus noise.
#   TH-01-AA  CT, 1 study x 2 series x 3 instances -> __seriesCount2
#   TH-02-BB  CT, 1 study x 3 series x 3 instances -> __seriesCount3
#   TH-03-CC  MR, 2 studies x 1 series x 2 instances -> __seriesCount2
#   OTHER-1   CT, not selected by patient_id = TH-*
#   notes.txt, junk.dcm: not DICOM
standard_source() {
	gen --patient TH-01-AA --studies 1 --series 2 --instances 3 --seed a
	gen --patient TH-02-BB --studies 1 --series 3 --instances 3 --seed b
	gen --patient TH-03-CC --studies 2 --series 1 --instances 2 --seed c --modality MR
	gen --patient OTHER-1 --studies 1 --series 1 --instances 2 --seed o
	printf 'shipping notes, not an image\n' >"$SRC/notes.txt"
	head -c 3000 /dev/urandom >"$SRC/junk.dcm"
}

# replace_file SRC DEST : put a copy of SRC at DEST by rename, so a hard link
# DEST shares with the source folder is broken rather than written through.
replace_file() {
	cp "$1" "$(dirname "$2")/.test-new" && mv -f "$(dirname "$2")/.test-new" "$2"
}

# ---- background runs and what they wrote ---------------------------------

# on_disk : instance files in data/dicom (not temp files).
on_disk() { find data/dicom -name '*.dcm' ! -name '.*' 2>/dev/null | wc -l; }

# wait_disk N : wait (up to 60 s) until N instances are on disk; 1 if the
# background run ended first or it took longer.
wait_disk() {
	local i
	for ((i = 0; i < 600; i++)); do
		[ "$(on_disk)" -ge "$1" ] && return 0
		kill -0 "$BGPID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# bg_wait SECONDS : wait for the background run, at most SECONDS; sets RC
# (124 when it had to be killed: it hung).
bg_wait() {
	local i
	for ((i = 0; i < $1 * 10; i++)); do
		kill -0 "$BGPID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$BGPID" 2>/dev/null; then
		kill_bg; RC=124
	else
		wait "$BGPID"; RC=$?
	fi
}

# archives_match [PID...] : every TH- patient's archive (or those of
# PID...) holds exactly its instances, the same DICOM content and transfer
# syntax as generated (tests/dicom_same.py).
archives_match() {
	local p a bad=0
	for p in ${*:-$(patients)}; do
		case $p in TH-*) ;; *) continue ;; esac
		a=$(archive_of "$p")
		[ -f "$a" ] || { say "    $a missing"; bad=1; continue; }
		instances_of "$p" | awk -F'\t' '{ print $1 "/" $2 "/" $3 ".dcm\t" $4 }' |
			"$PY" "$TESTS/dicom_same.py" "$a" | sed 's/^/    /' | head -n 5
		[ "${PIPESTATUS[2]}" -eq 0 ] || bad=1
	done
	return $bad
}

cd "$PROJ" || exit 1
