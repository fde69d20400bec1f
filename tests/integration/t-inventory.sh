#!/usr/bin/env bash
# shellcheck disable=SC2016,SC2119,SC2317  # `thlhp-make query` is literal message text; write_*config take optional args; inv_check is run by ok
# t-inventory: -t inventory, the CSV of every series of the selected
# patients, read back with Python's csv module and compared column by
# column with what was generated: from a folder source, and from Orthanc
# through DIMSE and through DICOMweb.  After `all` its downloaded and bytes
# columns are the files on disk and their sizes and its archive column the
# zip's name (empty for a patient whose archive is stale).  A state not made
# yet gives the header alone; it writes nothing; a state of schema 2 (before
# SeriesNumber and SeriesDescription were kept) is upgraded by the next run
# and filled in by the next query; one newer than the binary is refused.
# shellcheck source-path=SCRIPTDIR source=../netns.sh
source "$(dirname "$0")/../netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../orthanc.sh
source "$TESTS/orthanc.sh"

HEADER='PatientID,StudyInstanceUID,StudyDate,SeriesInstanceUID,SeriesNumber,Modality,SeriesDescription,expected,downloaded,bytes,archive'
gen --patient TH-01-IN --series 3 --instances 2 --seed i1 --series-number-base 301 \
	--series-description 'Thorax, bone kernel' --series-description 'Say "cheese"' \
	--series-description $'two\r\nlines'
gen --patient TH-02-IN --studies 2 --series 1 --instances 3 --seed i2 --modality MR \
	--study-date 20231231 --series-number-base 7 --series-description 'T1 axial'
gen --patient TH-03-IN --series 1 --instances 1 --seed i3 --series-number-base 1002
gen --patient OTHER-1 --series 1 --instances 1 --seed io --series-description 'not selected'
PACS_PATIENTS="TH-01-IN TH-02-IN TH-03-IN"

# The check, in Python: inv_check MODE PATIENTS [STALE]: $OUT is the
# header and one row per series of PATIENTS (space separated), in the
# order patient, study, series, with the generated PatientID, study,
# date, series, number, modality, description and instance count.  MODE
# "catalog": nothing downloaded yet (0, 0, no archive); "built": downloaded
# and bytes are the .dcm files on disk and their sizes, archive the name of
# the patient's one zip in data/zip, but empty for the patients of STALE.
# "blank": as built, with SeriesNumber and SeriesDescription empty (a
# store upgraded, not queried since).
cat >"$LOG/inv_check.py" <<'PY'
import csv, glob, json, os, sys

out, manifest, mode, header = sys.argv[1:5]
patients = sys.argv[5].split()
stale = sys.argv[6].split() if len(sys.argv) > 6 else []

def enc(pid):
    s = "".join(chr(b) if chr(b).isascii() and (chr(b).isalnum() or chr(b) in "._-")
                else "%%%02X" % b for b in pid.encode("utf-8"))
    return "%2E" + s[1:] if s.startswith(".") else s

want = []
with open(manifest, encoding="utf-8") as f:
    for line in f:
        p = line.rstrip("\n").split("\t")
        if p[0] == "series" and p[1] in patients:
            desc = json.loads(p[8]) or ""
            want.append([p[1], p[2], p[7], p[3], p[5], p[6], desc, p[4]])
want.sort(key=lambda r: (r[0].encode(), r[1].encode(), r[3].encode()))
with open(out, newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f))
bad = []
if not rows or ",".join(rows[0]) != header:
    bad.append("header: %r" % (rows[0] if rows else None))
rows = rows[1:]
if len(rows) != len(want):
    bad.append("%d rows, want %d" % (len(rows), len(want)))
for r, w in zip(rows, want):
    if len(r) != 11:
        bad.append("row of %d fields: %r" % (len(r), r))
        continue
    if mode == "blank":
        w = w[:4] + ["", w[5], ""] + w[7:]
    if r[:8] != w:
        bad.append("row %r\n      want %r" % (r[:8], w))
    d = os.path.join("data/dicom", enc(w[0]), w[1], w[3])
    files = [x for x in glob.glob(os.path.join(d, "*.dcm")) if not os.path.basename(x).startswith(".")]
    zips = glob.glob(os.path.join("data/zip", glob.escape(enc(w[0])) + "__seriesCount*.zip"))
    if mode == "catalog":
        got, exp = r[8:], ["0", "0", ""]
    else:
        got = r[8:]
        exp = [str(len(files)), str(sum(os.path.getsize(x) for x in files)),
               "" if w[0] in stale or len(zips) != 1 else os.path.basename(zips[0])]
        if w[0] not in stale and len(zips) != 1:
            bad.append("%s: %d archives in data/zip" % (w[0], len(zips)))
        if len(files) == 0:
            bad.append("%s %s: no files on disk" % (w[0], w[3]))
    if got != exp:
        bad.append("%s %s: downloaded, bytes, archive %r, want %r" % (w[0], w[3], got, exp))
for b in bad:
    print("    " + b)
sys.exit(1 if bad else 0)
PY
inv_check() { "$PY" "$LOG/inv_check.py" "$OUT" "$MANIFEST" "$1" "$HEADER" "$2" "${3:-}"; }
# unchanged : the state's files with their sizes and times, and the
# database's content.  (SQLite's -wal and -shm, which a reader of a WAL
# database makes when they are missing, hold no data: left out.)
unchanged() {
	(cd .thlhp && find . -type f ! -name '*-wal' ! -name '*-shm' -printf '%p %s %T@\n' | sort &&
		sha256sum state.db)
}

section "folder source: no state yet"
write_config
run -t inventory
exit_is "-t inventory before anything ran" 0
check "... prints the header alone" "$(cat "$OUT")" "$HEADER"
is_empty "... and nothing on stderr" "$ERR"
ok "... and makes no state" test ! -e .thlhp

section "folder source: the catalog"
run query
exit_is "query" 0
before=$(unchanged)
run -t inventory
exit_is "-t inventory" 0
ok "every series of TH-*, each column as generated; none downloaded" \
	inv_check catalog "$PACS_PATIENTS"
has_line "a description with a comma is quoted" "$OUT" ',"Thorax, bone kernel",'
has_line "a quote inside is doubled" "$OUT" ',"Say ""cheese""",'
has_line "a CR LF inside stays in its quoted field" "$OUT" $',"two\r$'
check "-t inventory wrote nothing: the state's files are as they were" "$(unchanged)" "$before"
check "... and made no folder" "$(find data -type f 2>/dev/null | wc -l)" 0

section "folder source: after all"
gen --patient 'TH-04-"q",x' --series 1 --instances 2 --seed i4 --series-description 'Q, "x"'
run -j2 all
exit_is "all" 0
before=$(unchanged)
run -t inventory
exit_is "-t inventory" 0
ok "downloaded and bytes are the files on disk, archive the zip's name" \
	inv_check built "$PACS_PATIENTS TH-04-\"q\",x"
has_line "a PatientID with a quote and a comma is quoted, its archive name encoded" "$OUT" \
	'^"TH-04-""q"",x",.*,TH-04-%22q%22%2Cx__seriesCount1\.zip$'
check "-t inventory wrote nothing after a build either" "$(unchanged)" "$before"
run -t inventory TH-02-IN
exit_is "-t inventory TH-02-IN" 0
ok "a patient named: only its rows" inv_check built TH-02-IN

section "folder source: a stale archive"
gen --patient TH-03-IN --study-uid "$(study_of TH-03-IN)" --series 1 --instances 1 --seed i3b \
	--series-number-base 1003 --series-description 'added later'
run query
exit_is "query sees TH-03-IN's new series" 0
run -t inventory
exit_is "-t inventory" 0
# The new series is not downloaded: check the others as built, it alone.
awk -F, 'NR == 1 || $0 !~ /added later/' "$OUT" >"$LOG/old.csv"
"$PY" "$LOG/inv_check.py" "$LOG/old.csv" <(grep -v 'added later' "$MANIFEST") built "$HEADER" \
	"$PACS_PATIENTS TH-04-\"q\",x" TH-03-IN
check "TH-03-IN's archive column is empty (stale), the others' as before" "$?" 0
has_line "the new series: 1 expected, 0 downloaded, 0 bytes, no archive" "$OUT" \
	'^TH-03-IN,.*,1003,CT,added later,1,0,0,$'
run -j2 all
exit_is "all rebuilds TH-03-IN" 0
run -t inventory
ok "... and then every row is as built, TH-03-IN in __seriesCount2" \
	inv_check built "$PACS_PATIENTS TH-04-\"q\",x"
has_line "... its archive named in both its rows" "$OUT" 'added later,1,1,[0-9]+,TH-03-IN__seriesCount2\.zip$'

section "a state of schema 2"
cp .thlhp/state.db "$LOG/v5.db"
# Schema 5's records back in their columns of before, then 3's and 4's
# columns dropped.
sqlite3 .thlhp/state.db "UPDATE series SET valid_sig = (SELECT input_sig FROM target
		WHERE stage = 'validate' AND key = series.uid);
	UPDATE patient SET (ar_path, ar_sig, ar_settings, ar_series, ar_size, ar_mtime, ar_hash,
		ar_error) = (SELECT out_path, input_sig, settings_sig, detail, out_size, out_mtime,
		out_hash, error FROM target WHERE stage = 'zip' AND key = patient.id);
	DROP TABLE target; DROP TABLE metadata; DROP TABLE omop_id; DROP TABLE omop_row;
	DROP TABLE archive_entry; DROP TABLE notice; DROP TABLE form_sub;
	ALTER TABLE series DROP COLUMN series_number;
	ALTER TABLE series DROP COLUMN series_desc;
	ALTER TABLE src_file DROP COLUMN series_number;
	ALTER TABLE src_file DROP COLUMN series_desc;
	ALTER TABLE patient DROP COLUMN ar_error;
	ALTER TABLE patient DROP COLUMN query_error;
	UPDATE schema_version SET version = 2;" 2>"$LOG/sqlite3.err"
check "sqlite3 made a schema-2 store" "$(sqlite3 .thlhp/state.db 'SELECT version FROM schema_version')" 2
before=$(unchanged)
run -t inventory
exit_is "-t inventory on it is refused: a report does not upgrade" 2
has_line "... saying how to upgrade it" "$ERR" \
	'\[state\] url: .*schema version 2, older than this thlhp-make.s \(8\): run `thlhp-make query` once'
check "... and leaves it as it was" "$(unchanged)" "$before"
run --offline query
exit_is "--offline query upgrades it" 0
check "... to schema 8" "$(sqlite3 .thlhp/state.db 'SELECT version FROM schema_version')" 8
check "... the archive records moved into target, one per archive" \
	"$(sqlite3 .thlhp/state.db "SELECT count(*) FROM target WHERE stage = 'zip' AND out_path IS NOT NULL")" \
	"$(zip_names | wc -w)"
check "... and the old columns emptied" \
	"$(sqlite3 .thlhp/state.db "SELECT count(*) FROM patient WHERE ar_path IS NOT NULL")" 0
run -t inventory
exit_is "-t inventory" 0
ok "every series is there, downloaded and archived, no number or description yet" \
	inv_check blank "$PACS_PATIENTS TH-04-\"q\",x"
run query
exit_is "the next query" 0
run -t inventory
ok "... fills them in again (the folder's header cache is read anew)" \
	inv_check built "$PACS_PATIENTS TH-04-\"q\",x"
run -q
exit_is "and everything is still up to date" 0

section "a state newer than this thlhp-make"
sqlite3 .thlhp/state.db 'UPDATE schema_version SET version = 9'
for args in "-t inventory" all; do
	run $args
	exit_is "$args on a schema-9 store is refused" 2
	has_line "... saying so" "$ERR" 'schema version 9, newer than this thlhp-make knows \(8\): use a newer thlhp-make'
done
ok "the archives are untouched" archives_match
no_line "no sanitizer or runtime error in any run" "$ERR" 'runtime error|Sanitizer'

# ---- Orthanc: DIMSE and DICOMweb ----------------------------------------
OR_PLUGINS='"/usr/share/orthanc/plugins/libOrthancDicomWeb.so"'
OR_EXTRA='"DicomWeb": { "Enable": true, "Root": "/dicom-web/" }'
orthanc_start
while IFS= read -r d; do orthanc_upload "$d"; done < <(
	awk -F'\t' '$1 == "instance" && $2 !~ /^TH-04/ { print $6 }' "$MANIFEST" | xargs -n1 dirname | sort -u)

for proto in dimse dicomweb; do
	section "$proto: Orthanc"
	mkdir -p "$T/$proto" && cd "$T/$proto" || exit 1
	if [ "$proto" = dimse ]; then
		write_dimse_config
	else
		write_config pacs.protocol=dicomweb pacs.path= \
			"pacs.url=http://127.0.0.1:$OR_HTTP/dicom-web/" pacs.timeout=10 pacs.retries=1
	fi
	run query
	exit_is "$proto: query" 0
	run -t inventory
	exit_is "$proto: -t inventory" 0
	ok "$proto: every series, each column as generated (numbers, quotes, CR LF)" \
		inv_check catalog "$PACS_PATIENTS"
	run -j2 all
	exit_is "$proto: all" 0
	before=$(unchanged)
	run -t inventory
	exit_is "$proto: -t inventory" 0
	ok "$proto: downloaded and bytes are the files on disk, archive the zip's name" \
		inv_check built "$PACS_PATIENTS"
	check "$proto: -t inventory wrote nothing" "$(unchanged)" "$before"
	no_line "$proto: no sanitizer or runtime error" "$ERR" 'runtime error|Sanitizer'
done
orthanc_stop

finish
