#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119,SC2317  # '$1' is literal config text; write_config takes optional args; ok/check call the helpers
# t-rules: rules of your own ([rule NAME] sections), with the real programs
# the four shipped examples run (examples/rules/*.ini): dcm2niix makes a
# .nii.gz and a .json per series and only a new series is converted again;
# rsync to a daemon started here sends only new or rebuilt archives and a
# new series replaces the remote archive; gdcmanon's copies hold no
# PatientName or PatientID, nor does their zip; dcmodify's tracking value
# reads back.  Then what a user relies on: -n and -q run no command; a
# failing command's exit status and stderr tail, -k, "failed last time"; a
# timeout leaves nothing; kill -9 of thlhp-make while 4 commands run leaves
# no orphan, no partial output, and the rerun makes what an uninterrupted
# run makes (5 trials); hostile PatientIDs through every example; a changed
# command makes exactly its rule's targets stale; NAME:PATIENT and
# -B NAME:PATIENT; -t targets, -t status, -t dag; config errors with
# file:line; two series of one rule never share an output silently.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../orthanc.sh
source "$TESTS/orthanc.sh"              # free_port
# shellcheck source-path=SCRIPTDIR source=../pg.sh
source "$TESTS/pg.sh"

EX=$TESTS/../examples/rules
# A number no other process on this machine has in its command line: the
# commands of this scenario are found (and only they) by it.
U=$(( $$ * 1000 + RANDOM % 1000 ))

# Every run: a sanitizer report is a failure even when the exit status is
# what the assertion wants.
eval "lib_$(declare -f run)"
run() {
	lib_run "$@"
	if grep -Eq 'Sanitizer|runtime error:|LeakSanitizer' "$ERR"; then
		fail "sanitizer report in: $LASTCMD"
		grep -E -A12 'Sanitizer|runtime error:' "$ERR" | sed -n '1,30s/^/    /p'
	fi
}

# jobs_of RULE : the job lines of RULE in the last run's progress output.
jobs_of() { grep -Ec "^\[[0-9]+/[0-9]+\] $1 " "$OUT"; }
# job_lines : every job line of the last run (the query aside).
job_lines() { grep -E '^\[[0-9]+/[0-9]+\] ' "$OUT" | grep -Ev '^\[[0-9]+/[0-9]+\] query ' | grep -c .; }

# ---- the rsync daemon: central storage --------------------------------

# rs_recv / rs_connects : archives the daemon received / connections, so far.
rs_recv() { grep -c ' recv ' "$RS_LOG"; }
rs_connects() { grep -c ' connect from ' "$RS_LOG"; }
RS_PORT=$(free_port)
CENTRAL=$T/central
RS_LOG=$LOG/rsyncd.log
mkdir -p "$CENTRAL"
cat >"$T/rsyncd.conf" <<EOF
log file = $RS_LOG
transfer logging = yes
use chroot = no
address = 127.0.0.1
[thlhp]
path = $CENTRAL
read only = no
uid = $(id -un)
gid = $(id -gn)
EOF
rsync --daemon --no-detach --port="$RS_PORT" --config="$T/rsyncd.conf" >"$LOG/rsyncd.out" 2>&1 &
RS_PID=$!
BGPIDS="$BGPIDS $RS_PID"
for ((i = 0; i < 100; i++)); do
	rsync "rsync://127.0.0.1:$RS_PORT/" >/dev/null 2>&1 && break
	sleep 0.1
done
if ! rsync "rsync://127.0.0.1:$RS_PORT/" >/dev/null 2>&1; then
	fail "rsync --daemon on 127.0.0.1:$RS_PORT answers"
	cat "$LOG/rsyncd.out"
	exit 1
fi
conn0=$(rs_connects)

# examples : the four shipped examples, as a user appends them, the sync
# one pointed at the daemon above.
examples() {
	local f
	for f in nifti sync deid stamp; do
		printf '\n'
		sed "s|rsync://storage\.example\.org/|rsync://127.0.0.1:$RS_PORT/|" "$EX/$f.ini"
	done
}

# ---- what the examples made ---------------------------------------------

# series_rows : "patient study series number" of every generated series
# of the project's source (TH- ones).
series_rows() {
	awk -F'\t' '$1 == "series" && $2 ~ /^TH-/ { print $2 "\t" $3 "\t" $4 "\t" $6 }' "$MANIFEST" |
		sort -u
}

# nifti_ok : every series has its folder with one .nii.gz (gzip) and one
# .json (JSON), named as nifti.ini says.
nifti_ok() {
	local p st se num d base bad=0
	while IFS=$'\t' read -r p st se num; do
		d=data/nifti/$(enc "$p")/$st/${num}_x base=$d/${num}_x
		if ! gzip -t "$base.nii.gz" 2>/dev/null; then
			say "    no .nii.gz (gzip) for $p series $se: $base.nii.gz"; bad=1
		fi
		if ! "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$base.json" 2>/dev/null; then
			say "    no .json for $p series $se: $base.json"; bad=1
		fi
	done < <(series_rows)
	return "$bad"
}

# deid_ok : no file of data/deid and no entry of data/deid-zip holds the
# PatientName or the PatientID (as a value or anywhere in its bytes), each
# instance has its copy, and a patient's zip holds all its series.
deid_ok() {
	"$PY" - "$MANIFEST" <<'EOF'
import io, os, sys, zipfile
import pydicom
bad = 0
inst = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.startswith("instance\t")]
inst = [i for i in inst if i[1].startswith("TH-") and os.path.exists(i[5])]
ids = {}
for i in inst:
    ds = pydicom.dcmread(i[5], stop_before_pixels=True)
    ids[i[1]] = (str(ds.PatientName), str(ds.PatientID))
def clean(data, where, pid):
    global bad
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    name, pidv = ids[pid]
    for kw in ("PatientName", "PatientID"):
        v = ds.get(kw)
        if v is not None and str(v) != "":
            print(f"    {where}: {kw} is still {str(v)!r}"); bad = 1
    for s in (name, pidv):
        if s and s.encode() in data:
            print(f"    {where}: holds {s!r} in its bytes"); bad = 1
    if "OtherPatientIDsSequence" in ds:
        print(f"    {where}: OtherPatientIDsSequence still there"); bad = 1
enc = lambda p: "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "".join("%%%02X" % b for b in c.encode()) for c in p)
n = 0
for root, _, files in os.walk("data/deid"):
    for f in files:
        path = os.path.join(root, f)
        pid = [p for p in ids if root.startswith("data/deid/" + enc(p) + "/")]
        if f.startswith("."):
            print(f"    {path}: a hidden file"); bad = 1; continue
        clean(open(path, "rb").read(), path, pid[0]); n += 1
if n != len(inst):
    print(f"    data/deid holds {n} files for {len(inst)} instances"); bad = 1
for pid in ids:
    z = f"data/deid-zip/{enc(pid)}.zip"
    want = sorted(f"{i[3]}/{i[4]}.dcm" for i in inst if i[1] == pid)
    try:
        zf = zipfile.ZipFile(z)
    except OSError as e:
        print(f"    {z}: {e}"); bad = 1; continue
    have = sorted(x for x in zf.namelist() if not x.endswith("/"))
    if have != want:
        print(f"    {z}: entries {have[:3]}... not the series/SOP of {pid} ({len(have)} for {len(want)})"); bad = 1
    for x in have:
        clean(zf.read(x), z + ":" + x, pid)
sys.exit(bad)
EOF
}

# stamp_ok PREFIX : every instance has its stamped copy whose (0020,4000)
# reads PREFIX<PatientID>, and the downloaded file is untouched.
stamp_ok() {
	local pfx=$1 p st se sop src c v bad=0 n=0
	while IFS=$'\t' read -r p st se sop src; do
		case $p in TH-*) ;; *) continue ;; esac
		c=$(find data/stamped/"$(enc "$p")"/"$st" -name "$sop.dcm" ! -name '.*' 2>/dev/null)
		[ -n "$c" ] || { say "    no stamped copy of $sop"; bad=1; continue; }
		v=$(dcmdump +P 0020,4000 "$c" | sed -n 's/^(0020,4000) LT \[\(.*\)\].*/\1/p' | sed 's/ *$//')
		[ "$v" = "$pfx$p" ] || { say "    $c: ImageComments '$v', want '$pfx$p'"; bad=1; }
		v=$(dcmdump +P 0020,4000 "data/dicom/$(enc "$p")/$st/$se/$sop.dcm" | grep -c TRACK)
		[ "$v" = 0 ] || { say "    data/dicom/.../$sop.dcm was stamped too"; bad=1; }
		n=$((n + 1))
	done < <(awk -F'\t' '$1 == "instance" { print $2 "\t" $3 "\t" $4 "\t" $5 "\t" $6 }' "$MANIFEST")
	[ "$n" -gt 0 ] || bad=1
	return "$bad"
}

# central_ok PID... : the daemon's folder of each PID holds its current
# archive only, the same bytes as data/zip's.
central_ok() {
	local p a have bad=0
	for p in "$@"; do
		a=$(archive_of "$p")
		have=$(ls -A "$CENTRAL/$(enc "$p")" 2>/dev/null)
		[ "$have" = "$(basename "$a")" ] ||
			{ say "    $CENTRAL/$(enc "$p") holds '$(tr '\n' ' ' <<<"$have")', want $(basename "$a")"; bad=1; continue; }
		cmp -s "$a" "$CENTRAL/$(enc "$p")/$(basename "$a")" || { say "    the copy of $a differs"; bad=1; }
	done
	return "$bad"
}

# dag_edge A B : 1 when -t dag's output ($OUT) has an edge from an A node to a B node.
dag_edge() {
	awk -F'"' -v a="$1" -v b="$2" '
		$3 ~ /\[label=/ { kind[$2] = substr($4, 1, index($4, "\\n") - 1) }
		$3 == " -> " && kind[$2] == a && kind[$4] == b { found = 1 }
		END { print found + 0 }' "$OUT"
}

outputs_state() { tree_state data/nifti; tree_state data/stamped; tree_state data/deid; tree_state data/deid-zip; }

# ==========================================================================
section "the four examples on the standard source: -n and -q run nothing"
standard_source
write_config
{
	examples
	cat <<'EOF'

[rule mark]
for = patient
after = zip
command = sh -c 'printf "%s|%s|%s\n" "$1" "$THLHP_PATIENT" "$THLHP_IN" >>marks.txt' sh {patient}
EOF
} >>thlhp.ini
cp thlhp.ini "$LOG/examples.ini"
run -n
exit_is "-n with four rules of examples/rules and one of ours" 0
for r in nifti stamp deid; do
	count_is "-n: a $r target per series, never built" "$OUT" "^$r +.* (never built|after validate \(.*\))\$" 7
done
for r in sync deidzip mark; do
	count_is "-n: a $r target per patient" "$OUT" "^$r +" 3
done
run -q
exit_is "-q: stale" 1
ok "-n and -q ran no command (no marker file)" test ! -e marks.txt
check "... made no rule output" "$(ls -d data/nifti data/stamped data/deid data/deid-zip 2>/dev/null)" ""
check "... connected to no rsync daemon" "$(rs_connects)" "$conn0"

section "all: each example with its real program"
run -j2 all
exit_is "all" 0
ok "nifti: every series has its .nii.gz and .json (dcm2niix)" nifti_ok
ok "nifti: dcm2niix's output is in .thlhp/log/nifti/<series>.log" \
	grep -qi dcm2niix ".thlhp/log/nifti/$(series_of TH-01-AA | head -n 1).log"
ok "stamp: every copy reads (0020,4000) TRACK-<PatientID> (dcmdump +P), data/dicom untouched" stamp_ok TRACK-
ok "deid: no PatientName or PatientID in any copy or in the zips (pydicom)" deid_ok
ok "sync: the daemon holds each patient's archive, byte for byte" central_ok TH-01-AA TH-02-BB TH-03-CC
check "sync: 3 archives received" "$(rs_recv)" 3
check "mark: ran once per patient with {patient}, THLHP_PATIENT and THLHP_IN" "$(sort marks.txt)" \
	"$(for p in TH-01-AA TH-02-BB TH-03-CC; do echo "$p|$p|$(archive_of "$p")"; done)"
check "no temp name left" "$(temp_files data)" ""

section "a rerun does nothing"
before=$(outputs_state) conn=$(rs_connects)
run -q
exit_is "-q right after all: up to date" 0
[ "$RC" -eq 0 ] || { run -n; say "    -n says:"; sed 's/^/    | /' "$OUT"; }
run all
exit_is "all again" 0
check "... ran no job" "$(job_lines)" 0
check "... rewrote no output" "$(outputs_state)" "$before"
check "... made no connection to the daemon" "$(rs_connects)" "$conn"
check "... ran no command (marks.txt)" "$(wc -l <marks.txt)" 3
# So that what follows starts from a quiet state whatever the above found.
run all

section "a new series: only it is converted, only its archive is sent again"
gen --patient TH-01-AA --study-uid "$(study_of TH-01-AA)" --series 1 --instances 2 --series-number-base 3 --seed anew
before=$(file_state data/nifti | grep -v "/3_x/")
recv=$(rs_recv)
run -n
count_is "-n: one nifti target, the new series" "$OUT" '^nifti ' 1
has_line "... after validate" "$OUT" "^nifti +data/nifti/TH-01-AA/$(study_of TH-01-AA)/3_x +after validate \("
has_line "-n: sync TH-01-AA after zip" "$OUT" '^sync +TH-01-AA +after zip \('
count_is "-n: no other patient's sync" "$OUT" '^sync ' 1
run all
exit_is "all with the new series" 0
check "nifti ran once" "$(jobs_of nifti)" 1
ok "... for it: 3_x.nii.gz" test -f "data/nifti/TH-01-AA/$(study_of TH-01-AA)/3_x/3_x.nii.gz"
check "... the other series' NIfTI untouched (inode, size, mtime)" "$(file_state data/nifti | grep -v "/3_x/")" "$before"
check "sync ran once" "$(jobs_of sync)" 1
check "the daemon received one archive" "$(( $(rs_recv) - recv ))" 1
ok "its folder holds TH-01-AA__seriesCount3.zip only: __seriesCount2 deleted there" central_ok TH-01-AA TH-02-BB TH-03-CC
has_line "the daemon's log shows the deletion" "$RS_LOG" ' del\. .*TH-01-AA/TH-01-AA__seriesCount2\.zip'
ok "deid: the new series de-identified too, and in the zip" deid_ok
ok "stamp: the new series stamped" stamp_ok TRACK-
run -q
exit_is "-q afterwards: up to date" 0
[ "$RC" -eq 0 ] || { run -n; sed 's/^/    | /' "$OUT"; run all; }

section "a changed command makes exactly its rule's targets stale"
sed -i 's/=TRACK-{patient}/=TRACK2-{patient}/' thlhp.ini
run -n
exit_is "-n" 0
count_is "-n: every stamp target, command changed" "$OUT" '^stamp +.* +command changed$' 8
check "-n: nothing else" "$(grep -Ev '^stamp +.* +command changed$|^[0-9]+ targets? stale' "$OUT")" ""
run all
exit_is "all" 0
check "only stamp ran, 8 jobs" "$(job_lines) $(jobs_of stamp)" "8 8"
ok "the copies read TRACK2-<PatientID>" stamp_ok TRACK2-

section "NAME:PATIENT, -B NAME:PATIENT"
nb=$(find data/nifti/TH-02-BB -name '*.nii.gz' | head -n 1)
rm -rf data/nifti/TH-02-BB
run -n
count_is "-n: TH-02-BB's 3 series, output missing" "$OUT" '^nifti +data/nifti/TH-02-BB/.* +output missing$' 3
run -t status
exit_is "-t status" 0
has_line "-t status: TH-02-BB stale by nifti" "$OUT" '^TH-02-BB .*stale \(nifti\): output missing'
run nifti:TH-02-BB
exit_is "nifti:TH-02-BB" 0
check "... ran its 3 nifti jobs and nothing else" "$(job_lines) $(jobs_of nifti)" "3 3"
ok "... made them" test -f "$nb"
old=$(ident "$nb")
run -n -B nifti:TH-02-BB
count_is "-n -B nifti:TH-02-BB: 3 forced" "$OUT" '^nifti +data/nifti/TH-02-BB/.* +forced$' 3
count_is "... nothing else" "$OUT" '^[a-z]+ ' 3
run -B nifti:TH-02-BB
exit_is "-B nifti:TH-02-BB" 0
check "... ran 3 nifti jobs" "$(job_lines) $(jobs_of nifti)" "3 3"
ok "... a new file in place" test "$(ident "$nb")" != "$old"
conn=$(rs_connects)
run sync:TH-03-CC
exit_is "sync:TH-03-CC when up to date" 0
check "... connects to no daemon" "$(rs_connects)" "$conn"
run -B sync:TH-03-CC
exit_is "-B sync:TH-03-CC" 0
check "... runs rsync once" "$(( $(rs_connects) - conn )) $(jobs_of sync)" "1 1"

section "-t targets, -t status, -t dag show the rules"
run -t targets
exit_is "-t targets" 0
for r in nifti sync deid deidzip stamp mark; do
	has_line "-t targets: $r" "$OUT" "^$r\$"
done
has_line "-t targets: nifti:TH-01-AA" "$OUT" '^nifti:TH-01-AA$'
has_line "-t targets: sync:TH-03-CC" "$OUT" '^sync:TH-03-CC$'
rm -rf "data/stamped/TH-03-CC"
run -t status
exit_is "-t status" 0
has_line "-t status: TH-03-CC stale by stamp" "$OUT" '^TH-03-CC .*stale \(stamp\)'
run -t dag
exit_is "-t dag" 0
for r in nifti sync deid deidzip stamp mark; do
	has_line "-t dag: a $r node" "$OUT" "label=\"$r\\\\n"
done
check "-t dag: edges validate -> deid -> deidzip and zip -> sync" \
	"$(dag_edge validate deid) $(dag_edge deid deidzip) $(dag_edge zip sync)" "1 1 1"
run all

section "rules after rules: one run builds the chain, the next has nothing to do"
cat >>thlhp.ini <<'EOF'

[rule chain1]
for = patient
after = zip
command = cp {in} {out}
output = data/chain1/{patient_file}.zip

[rule chain2]
for = patient
after = chain1
command = sh -c 'unzip -Z1 "$1" >"$2"' sh {in} {out}
output = data/chain2/{patient_file}.txt

[rule chs1]
for = series
after = validate
command = sh -c 'ls "$1" >"$2"' sh {in} {out}
output = data/chs1/{series}.txt

[rule chs2]
for = series
after = chs1
command = cp {in} {out}
output = data/chs2/{series}.txt
EOF
run all
exit_is "all with chain1 -> chain2 (patient) and chs1 -> chs2 (series)" 0
check "chain2 made for each patient, chs2 for each series" \
	"$(find data/chain2 -type f 2>/dev/null | wc -l) $(find data/chs2 -type f 2>/dev/null | wc -l)" "3 8"
run -q
exit_is "-q afterwards: up to date" 0
[ "$RC" -eq 0 ] || { run -n; sed 's/^/    | /' "$OUT"; run all; }
sed -i '/^\[rule chain1\]/,$d' thlhp.ini

section "a failing command: its exit status and stderr tail, -k, failed last time"
cat >>thlhp.ini <<'EOF'

[rule bad]
for = series
after = validate
command = sh -c 'echo "reading $1" >&2 && echo "bad header in $1" >&2 && exit 3' sh {series}
EOF
run all
exit_is "all with a command that exits 3" 2
has_line "the job's error: exit 3, its log, its stderr's last lines" "$ERR" \
	'^thlhp-make: bad TH-.* ([0-9.]+): sh: exit 3 \(log \.thlhp/log/bad/\1\.log\): reading \1 \| bad header in \1$'
run -n
has_line "-n: failed last time" "$OUT" '^bad +TH-.* +failed last time$'
rm -rf data/nifti/TH-03-CC data/deid-zip/TH-01-AA.zip
run -k all
exit_is "-k all" 2
count_is "-k: every bad target failed" "$ERR" '^thlhp-make: bad .*: sh: exit 3 ' 8
ok "-k: the rest was built (TH-03-CC's NIfTI)" nifti_ok
ok "-k: ... and TH-01-AA's de-identified zip" test -f data/deid-zip/TH-01-AA.zip
sed -i '/^\[rule bad\]/,$d' thlhp.ini
cat >>thlhp.ini <<'EOF'

[rule nothere]
for = patient
after = zip
command = thlhp-no-such-program {in}
EOF
run nothere:TH-02-BB
exit_is "a program that is not there" 2
has_line "... named, with its rule" "$ERR" '^thlhp-make: nothere .*thlhp-no-such-program.*not found'
sed -i '/^\[rule nothere\]/,$d' thlhp.ini

section "a command killed by its timeout leaves nothing"
cat >>thlhp.ini <<EOF

[rule slow]
for = patient
after = zip
command = sh -c 'mkdir -p "\$1/sub" && echo partial >"\$1/sub/f" && sleep 29.$U & wait' sh {out}
output = data/slow/{patient_file}/
timeout = 1s
EOF
run slow:TH-02-BB
exit_is "slow:TH-02-BB, killed after 1 s" 2
has_line "... says so" "$ERR" '^thlhp-make: slow .*timeout of 1 s'
check "nothing under the output name" "$(ls -A data/slow 2>/dev/null)" ""
check "its child (sleep) was killed with it" "$(pgrep -f "^sleep 29\.$U\$")" ""
run slow:TH-02-BB
check "no temp left after the next run either" "$(ls -A data/slow 2>/dev/null)" ""
sed -i '/^\[rule slow\]/,$d' thlhp.ini

section "two series whose output names are the same: an error, never silent"
cat >>thlhp.ini <<'EOF'

[rule dup]
for = series
after = validate
command = sh -c 'echo "$1" >"$2/uid"' sh {series} {out}
output = data/dup/{patient_file}/{series_number}/
EOF
# TH-03-CC: two studies, series number 1 in each.
for i in 1 2; do
	run all
	exit_is "all, run $i: two targets would make data/dup/TH-03-CC/1" 2
	has_line "... named in the error" "$ERR" 'data/dup/TH-03-CC/1'
done
run -q
exit_is "-q does not call it up to date" 1
sed -i '/^\[rule dup\]/,$d' thlhp.ini
rm -rf data/dup

# ==========================================================================
section "kill -9 of thlhp-make while 4 commands run (5 trials)"
K=$T/k9
mkdir -p "$K/source"
gen --outdir "$K/source" --patient TH-K9 --studies 1 --series 4 --instances 1 --seed k9
cd "$K" || exit 1
write_config "pacs.path=$K/source"
cat >>thlhp.ini <<EOF

[rule k9]
for = series
after = validate
command = sh -c 'printf "%s\\n" "\$2" >"\$1" && sleep 5.$U && printf "done\\n" >>"\$1"' rtest-$U {out} {series}
output = data/k9/{series}.txt
jobs = 4
EOF
# sleeps : "pid start-time" of this scenario's sleeps.
sleeps() {
	local p
	for p in $(pgrep -f "^sleep 5\.$U\$"); do
		printf '%s %s\n' "$p" "$(awk '{ print $22 }' "/proc/$p/stat" 2>/dev/null)"
	done
}
# alive "pid start"... : those of them still running (a zombie is dead:
# killed, only not yet reaped by whoever inherited it).
alive() {
	local p s
	while read -r p s; do
		[ -n "$p" ] || continue
		[ "$(awk '$3 != "Z" { print $22 }' "/proc/$p/stat" 2>/dev/null)" = "$s" ] && echo "$p"
	done
}
k9_outputs() { (cd data/k9 2>/dev/null && find . -type f ! -name '.*' -exec sha256sum {} + | sort -k2); }
run -j4 k9
exit_is "an uninterrupted run" 0
want=$(k9_outputs)
check "... made 4 outputs, each complete" "$(grep -c . <<<"$want") $(cat data/k9/*.txt | grep -c '^done$')" "4 4"
for trial in 1 2 3 4 5; do
	rm -rf data/k9
	run_bg -j4 k9
	n=0
	for ((i = 0; i < 600; i++)); do
		n=$(sleeps | grep -c .)
		[ "$n" -ge 4 ] && break
		kill -0 "$BGPID" 2>/dev/null || break
		sleep 0.1
	done
	if [ "$n" -lt 4 ]; then
		fail "trial $trial: 4 commands running at once (saw $n)"; kill_bg; show_run; continue
	fi
	orphans=$(sleeps)
	kill_bg
	bad=$(for f in data/k9/*.txt; do [ -e "$f" ] && ! grep -q '^done$' "$f" && echo "$f"; done)
	check "trial $trial: after kill -9, no partial output under a final name" "$bad" ""
	# The rerun: by the time its own commands run, the killed run's are gone.
	run_bg -j4 k9
	mine=
	for ((i = 0; i < 600; i++)); do
		mine=$(sleeps | grep -vxF "$orphans")
		[ -n "$mine" ] && break
		kill -0 "$BGPID" 2>/dev/null || break
		sleep 0.05
	done
	left=$(alive <<<"$orphans")
	check "trial $trial: the killed run's commands are gone once the rerun's run" "$(tr '\n' ' ' <<<"$left" | sed 's/ *$//')" ""
	bg_wait 120
	exit_is "trial $trial: the rerun" 0
	for ((i = 0; i < 150; i++)); do
		[ -z "$(sleeps)" ] && break
		sleep 0.1
	done
	check "trial $trial: no command process left" "$(sleeps)" ""
	check "trial $trial: the same outputs as the uninterrupted run" "$(k9_outputs)" "$want"
	check "trial $trial: no temp name left" "$(temp_files data)" ""
done
# kill9_now : start -j4 k9, kill -9 it once its 4 commands run, then
# kill those (as the rerun should) and wait for them to go.
kill9_now() {
	local i p
	rm -rf data/k9
	run_bg -j4 k9
	for ((i = 0; i < 600; i++)); do
		[ "$(sleeps | grep -c .)" -ge 4 ] && break
		kill -0 "$BGPID" 2>/dev/null || break
		sleep 0.1
	done
	kill_bg
	for p in $(sleeps | cut -d' ' -f1); do kill -9 "$p"; done
	for ((i = 0; i < 50; i++)); do [ -z "$(sleeps)" ] && break; sleep 0.1; done
}
section "the next run and -t clean remove a killed run's temp files"
kill9_now
ok "killed with its commands: their temp files are there" test -n "$(temp_files data/k9)"
run -j4 k9
exit_is "the next run, the killed commands gone" 0
check "... removed the killed run's temp files" "$(temp_files data)" ""
kill9_now
run -t clean
exit_is "-t clean after a kill -9" 0
check "... removed the killed run's temp files" "$(temp_files data)" ""
for p in $(sleeps | cut -d' ' -f1); do kill -9 "$p"; done
cd "$PROJ" || exit 1

# ==========================================================================
section "hostile PatientIDs through every example and a rule of ours"
H=$T/hostile
mkdir -p "$H/source"
gen --outdir "$H/source" --patient 'TH-$(touch PWNED)' --studies 1 --series 2 --instances 1 --seed h1 \
	--series-description '$(touch PWNED)' --series-description '../../evil'
gen --outdir "$H/source" --patient 'TH-../../x' --studies 1 --series 1 --instances 1 --seed h2
cd "$H" || exit 1
write_config "pacs.path=$H/source"
{
	examples
	cat <<'EOF'

[rule hs]
for = series
after = validate
command = sh -c 'printf "%s\n" "$1" >"$2/id"' sh {patient} {out}
output = data/hs/{patient_file}/{patient}/{series_description}/

[rule hp]
for = patient
after = zip
command = sh -c 'printf "%s\n" "$1" >"$2"' sh {patient} {out}
output = data/hp/{patient}/{patient_file}.txt
EOF
} >>thlhp.ini
touch "$LOG/hostile.start"
sleep 0.01
run -j2 all
exit_is "all with PatientIDs TH-\$(touch PWNED) and TH-../../x" 0
check "no file named PWNED in the scenario's tree, its cwd or /" \
	"$(find "$T" / -maxdepth 1 -name PWNED; find "$T" -name PWNED)" ""
check "nothing created outside the project but the daemon's copies" \
	"$(find "$T" -newer "$LOG/hostile.start" ! -path "$H" ! -path "$H/*" ! -path "$LOG*" \
		! -path "$CENTRAL" ! -path "$CENTRAL/TH-*" -print)" ""
check "the daemon's copies in one folder per patient" "$(cd "$CENTRAL" && ls -d TH-%24* TH-..* 2>/dev/null)" \
	"$(printf '%s\n' 'TH-%24%28touch%20PWNED%29' 'TH-..%2F..%2Fx')"
check "every file the run made in the project is inside data/ or .thlhp/" \
	"$(find "$H" -newer "$LOG/hostile.start" -type f ! -path "$H/data/*" ! -path "$H/.thlhp/*" -print)" ""
check "every output resolves inside data/" \
	"$(find "$H/data" -mindepth 1 -exec realpath -- {} + | grep -v "^$(realpath "$H/data")/")" ""
check "{patient} reached the command as one argument, as it is" \
	"$(cat data/hp/*/*.txt | sort)" "$(printf '%s\n' 'TH-$(touch PWNED)' 'TH-../../x')"
check "... in a series rule too" "$(cat data/hs/*/*/*/id | sort -u)" \
	"$(printf '%s\n' 'TH-$(touch PWNED)' 'TH-../../x')"
ok "stamp wrote the hostile PatientID as text" \
	grep -rqF 'TRACK-TH-$(touch PWNED)' data/stamped
cd "$PROJ" || exit 1

# ==========================================================================
section "config errors name their file and line"
mkdir -p "$T/cfg" && cd "$T/cfg" || exit 1
# bad_config DESC MARK FRAGMENT : thlhp.ini with FRAGMENT is refused, exit
# 2, the message naming the line that holds MARK.
bad_config() {
	local line
	write_config
	printf '\n%s\n' "$3" >>thlhp.ini
	line=$(grep -nF -- "$2" thlhp.ini | head -n 1 | cut -d: -f1)
	run -n
	exit_is "$1" 2
	has_line "... thlhp.ini:$line: names it" "$ERR" "^thlhp-make: thlhp\.ini:$line: .*rule"
	no_line "... and the run did not start" "$OUT" '^\['
}
bad_config "an unknown key in [rule x]" "colour =" '[rule x]
for = series
after = validate
command = true
colour = red'
bad_config "after = validat (no such stage)" "after = validat" '[rule x]
for = series
after = validat
command = true'
has_line "... says which" "$ERR" 'no stage "validat"'
bad_config "two rules after each other" "after = b" '[rule a]
for = patient
after = b
command = true

[rule b]
for = patient
after = a
command = true'
bad_config "an unknown placeholder {seris}" "{seris}" '[rule x]
for = series
after = validate
command = echo {seris}'
has_line "... named" "$ERR" '\{seris\}'
bad_config "{out} without output" "{out}" '[rule x]
for = series
after = validate
command = cp -r {in} {out}'
bad_config "a built-in stage's name" "[rule zip]" '[rule zip]
for = patient
after = validate
command = true'
bad_config "a series rule after zip" "after = zip" '[rule x]
for = series
after = zip
command = true'
cd "$PROJ" || exit 1

section "two workers on a PostgreSQL state: each rule target made once"
pg_start
mkdir -p "$T/pgw1" "$T/pgw2"
cd "$T/pgw1" || exit 1
write_config "state.url=$PG_URL" output.dicom_dir=../pgshared/dicom output.zip_dir=../pgshared/zip
# The shared output folder is outside each worker's folder: an absolute
# path (a relative one may not climb out with '..').
cat >>thlhp.ini <<EOF

[rule twice]
for = series
after = validate
command = sh -c 'sleep 0.2 && ls "\$1" >"\$2"' sh {in} {out}
output = $T/pgshared/list/{patient_file}/{series}.txt
EOF
cp thlhp.ini "$T/pgw2/"
(cd "$T/pgw1" && "$THLHP" -j2 all >"$LOG/pgw1.out" 2>"$LOG/pgw1.err"; echo $? >"$LOG/pgw1.rc") &
w1=$!
(cd "$T/pgw2" && "$THLHP" -j2 all >"$LOG/pgw2.out" 2>"$LOG/pgw2.err"; echo $? >"$LOG/pgw2.rc") &
w2=$!
wait "$w1" "$w2"   # not the rsync daemon
check "both workers exit 0" "$(cat "$LOG/pgw1.rc") $(cat "$LOG/pgw2.rc")" "0 0"
nser=$(find "$T/pgshared/dicom" -mindepth 3 -maxdepth 3 -type d | wc -l)
ok "the workers downloaded series ($nser)" test "$nser" -gt 0
check "each series' list was made by one worker, once" \
	"$(cat "$LOG/pgw1.out" "$LOG/pgw2.out" | grep -c '] twice ')" "$nser"
check "every list is there" "$(find "$T/pgshared/list" -name '*.txt' | wc -l)" "$nser"
(cd "$T/pgw1" && "$THLHP" -q)
check "-q after: up to date" "$?" 0
cd "$PROJ" || exit 1

finish
