#!/usr/bin/env bash
# shellcheck disable=SC2016  # '$."..."' is SQLite's JSON path, not a shell expansion
# t-metadata: the metadata stage and -t metadata on real DICOM (pydicom's
# test files: CT, MR, RT plan and dose, SEG, SR, ECG waveform, JPEG 2000,
# Latin-1, Cyrillic and GB18030 text), from a folder source.  What a user
# checks: every top-level element pydicom reads in a file is in the stored
# DICOM JSON with the same value, sequences into their items, and bulk data
# (Pixel Data, Waveform Data) and values past max_value_bytes are not; a
# 10 KB private element is kept once max_value_bytes = 16K, and the setting
# makes the series stale; validate hands its headers over ("0 headers
# read"), a no-op run runs no metadata job, -B metadata reads every header
# again, a changed file replaces its series' rows; -t metadata as JSON Lines
# and CSV, by patient; SQL on SQLite (json_extract) and PostgreSQL (jsonb,
# GIN index) gives the same series, with the README's queries
# (metadata-queries-*.sql) run as they are and their output shown at the end.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=../pg.sh
source "$TESTS/pg.sh"

QUERIES=$TESTS/integration
DATA=/usr/lib/python3/dist-packages/pydicom/data
CHECK=$TESTS/metadata_check.py
DB=.thlhp/state.db

# Every run: a sanitizer report is a failure even when the exit status is
# what the assertion wants.
eval "lib_$(declare -f run)"
run() {
	lib_run "$@"
	if grep -Eq 'Sanitizer|runtime error:' "$ERR"; then
		fail "sanitizer report in: $LASTCMD"
		grep -E -A12 'Sanitizer|runtime error:' "$ERR" | sed -n '1,30s/^/    /p'
	fi
}

# config_meta [MAX] : thlhp.ini for $SRC, every patient, with [metadata]
# (and max_value_bytes = MAX); further arguments go to write_config.
config_meta() {
	local max=${1:-}
	shift || true
	write_config 'select.patient_id=*' "$@"
	printf '\n[metadata]\n' >>thlhp.ini
	[ -z "$max" ] || printf 'max_value_bytes = %s\n' "$max" >>thlhp.ini
}

# stored FILE : the metadata table as JSON Lines {SOPInstanceUID, header}.
stored() {
	sqlite3 "$DB" "SELECT json_object('SOPInstanceUID', sop_uid, 'header', json(header))
		FROM metadata ORDER BY sop_uid" >"$1"
}

# sql QUERY : one SQLite answer, rows as a|b.
sql() { sqlite3 "$DB" "$1"; }

# summaries : the metadata job lines of the last run's stdout.
summaries() { grep -E '^\[[0-9]+/[0-9]+\] metadata ' "$OUT"; }

# ---- the source: pydicom's test files, and a series made here -----------

THIN=1.2.826.0.1.3680043.8.498.7001.2            # 1CT1's thin series
THIN1=1.2.826.0.1.3680043.8.498.7001.2.1
THIN2=1.2.826.0.1.3680043.8.498.7001.2.2
for f in test_files/CT_small.dcm test_files/MR_small.dcm test_files/rtplan.dcm \
	test_files/rtdose.dcm test_files/liver_1frame.dcm test_files/test-SR.dcm \
	test_files/waveform_ecg.dcm test_files/693_J2KI.dcm \
	charset_files/chrGerm.dcm charset_files/chrRuss.dcm charset_files/chrX2.dcm; do
	cp "$DATA/$f" "$SRC/" || { say "FAIL: no $DATA/$f (apt-get install python3-pydicom)"; exit 1; }
done
# Two more CT instances of patient 1CT1, a second series: 0.625 mm, kernel
# BONE, and a 10,240-byte private element (0071,1010).
"$PY" - "$SRC" "$THIN" "$THIN1" "$THIN2" <<'EOF' || { say "FAIL: cannot make the thin series"; exit 1; }
import sys, pydicom
src, series, sops = sys.argv[1], sys.argv[2], sys.argv[3:]
for i, sop in enumerate(sops, 1):
    ds = pydicom.dcmread(src + "/CT_small.dcm")
    ds.SeriesInstanceUID = series
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.SeriesNumber, ds.InstanceNumber = 2, i
    ds.SeriesDescription, ds.ConvolutionKernel, ds.SliceThickness = "thin bone", "BONE", "0.625"
    ds.private_block(0x0071, "THLHP TEST", create=True).add_new(0x10, "OB", bytes(range(256)) * 40)
    ds.save_as("%s/ct_thin_%d.dcm" % (src, i))
EOF
# What pydicom reads in each file: name, patient, study, series, SOP,
# modality, slice thickness (- when there is none).
"$PY" - "$SRC"/*.dcm >"$LOG/facts.tsv" <<'EOF'
import os, sys, pydicom
for f in sys.argv[1:]:
    ds = pydicom.dcmread(f, stop_before_pixels=True)
    st = ds.get("SliceThickness")
    print("\t".join([os.path.basename(f), str(ds.PatientID), ds.StudyInstanceUID,
                     ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.Modality,
                     "-" if st in (None, "") else repr(float(st))]))
EOF
NINST=$(wc -l <"$LOG/facts.tsv")
NSERIES=$(cut -f4 "$LOG/facts.tsv" | sort -u | wc -l)
sop_of() { awk -F'\t' -v f="$1" '$1 == f { print $5 }' "$LOG/facts.tsv"; }
say "source: $NINST instances in $NSERIES series"

# ---- 1. every element, as pydicom reads it --------------------------------

section "first run: every header stored, as pydicom reads it"
config_meta
run all
exit_is "all" 0
cp "$OUT" "$LOG/first.out"
check "one row per instance" "$(sql 'SELECT count(*) FROM metadata')" "$NINST"
check "rows of distinct SOP instances in the right series" \
	"$(sql 'SELECT series_uid, sop_uid FROM metadata ORDER BY 2' | tr '|' '\t')" \
	"$(cut -f4,5 "$LOG/facts.tsv" | sort -t "$(printf '\t')" -k2,2)"
stored "$LOG/stored.jsonl"
"$PY" "$CHECK" "$LOG/stored.jsonl" "$SRC"/*.dcm >"$LOG/cmp.out" 2>"$LOG/cmp.err"
check "metadata_check.py: no difference (exit 0)" "$?" 0
sed 's/^/    /' "$LOG/cmp.out"
for f in "$SRC"/*.dcm; do
	b=$(basename "$f")
	has_line "$b: every element is stored with pydicom's value, bulk data and long values left out" \
		"$LOG/cmp.out" "^${b//./\\.}: ok, [0-9]+ elements"
done
has_line "... sequences compared item by item (waveform_ecg: 100+ sequences)" "$LOG/cmp.out" \
	'^waveform_ecg\.dcm: ok, [0-9]+ elements \([0-9]{3,} sequences, [0-9]+ items\)'

# Bulk data: in the files, not in the rows.
check "10 of the files hold Pixel Data" \
	"$("$PY" -c 'import sys, pydicom
print(sum(1 for f in sys.argv[1:] if 0x7FE00010 in pydicom.dcmread(f)))' "$SRC"/*.dcm)" 10
check "the rows hold PatientID (the JSON path works)" \
	"$(sql "SELECT count(*) FROM metadata WHERE json_extract(header, '\$.\"00100020\"') IS NOT NULL")" "$NINST"
check "... and no Pixel Data (7FE0,0010)" \
	"$(sql "SELECT count(*) FROM metadata WHERE json_extract(header, '\$.\"7FE00010\"') IS NOT NULL")" 0
check "waveform_ecg: WaveformSequence's items hold NumberOfWaveformChannels, not WaveformData" \
	"$(sql "SELECT json_extract(header, '\$.\"54000100\".Value[0].\"003A0005\".Value[0]'),
		json_extract(header, '\$.\"54000100\".Value[0].\"54001010\"') IS NULL,
		json_extract(header, '\$.\"54000100\".Value[1].\"54001010\"') IS NULL
		FROM metadata WHERE patient_id = '642341'")" \
	"$("$PY" -c 'import sys, pydicom
ds = pydicom.dcmread(sys.argv[1]); w = ds.WaveformSequence
print("%d|%d|%d" % (w[0].NumberOfWaveformChannels, "WaveformData" in w[0], "WaveformData" in w[1]))' "$SRC/waveform_ecg.dcm")"
check "the private creator of the 10 KB element is stored (0071,0010)" \
	"$(sql "SELECT json_extract(header, '\$.\"00710010\".Value[0]') FROM metadata WHERE series_uid = '$THIN'")" \
	"$(printf 'THLHP TEST\nTHLHP TEST')"
check "... its 10 KB value is not (default max_value_bytes 4096)" \
	"$(sql "SELECT count(*) FROM metadata WHERE json_extract(header, '\$.\"00711010\"') IS NOT NULL")" 0
check "non-ASCII text as UTF-8: chrRuss's PatientName in Cyrillic" \
	"$(sql "SELECT json_extract(header, '\$.\"00100010\".Value[0].Alphabetic') FROM metadata WHERE patient_id = 'SCSRUSS'")" \
	"$("$PY" -c 'import sys, pydicom; print(pydicom.dcmread(sys.argv[1]).PatientName)' "$SRC/chrRuss.dcm")"

# The comparison can fail: a changed value, a missing element, Pixel Data
# present, a changed value inside a sequence item, each is reported.
"$PY" - "$LOG/stored.jsonl" "$(sop_of CT_small.dcm)" "$(sop_of rtplan.dcm)" "$THIN1" \
	>"$LOG/tampered.jsonl" <<'EOF'
import json, sys
ct, rt, thin = sys.argv[2:5]
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    h = o["header"]
    if o["SOPInstanceUID"] == ct:
        h["00100020"]["Value"] = ["someone else"]
        del h["00180050"]
        h["7FE00010"] = {"vr": "OW", "InlineBinary": "AAAA"}
    if o["SOPInstanceUID"] == rt:
        h["300A00B0"]["Value"][0]["300A00C2"]["Value"] = ["Field 2"]
    if o["SOPInstanceUID"] == thin:
        h["00711010"] = {"vr": "OB", "InlineBinary": "AAAA"}
    print(json.dumps(o))
EOF
"$PY" "$CHECK" "$LOG/tampered.jsonl" "$SRC/CT_small.dcm" "$SRC/rtplan.dcm" "$SRC/ct_thin_1.dcm" \
	>"$LOG/cmp-t.out" 2>&1
check "tampered rows: metadata_check.py fails (exit 1)" "$?" 1
has_line "... names the changed PatientID" "$LOG/cmp-t.out" '^CT_small\.dcm 00100020 PatientID: \["someone else"\]'
has_line "... the missing SliceThickness" "$LOG/cmp-t.out" '^CT_small\.dcm 00180050 SliceThickness: absent$'
has_line "... the Pixel Data present" "$LOG/cmp-t.out" '^CT_small\.dcm 7FE00010 PixelData: bulk data present$'
has_line "... the BeamName changed in BeamSequence's first item" "$LOG/cmp-t.out" \
	'^rtplan\.dcm/300A00B0\[0\] 300A00C2 BeamName: \["Field 2"\]'
has_line "... the 10 KB value present at max 4096" "$LOG/cmp-t.out" \
	'^ct_thin_1\.dcm 00711010 private: 10240 bytes > 4096, present$'

# ---- 4. counting: handed over, no-op, -B ---------------------------------

section "validate hands the headers over; a no-op run runs no metadata job"
cp "$LOG/first.out" "$OUT"
has_line "first run: download and validate ran" "$OUT" '\] validate '
count_is "first run: one metadata job per series" "$OUT" '\] metadata ' "$NSERIES"
count_is "... each says '0 headers read' (validate parsed them)" "$OUT" \
	'\] metadata .* [0-9]+ instances? stored, 0 headers read$' "$NSERIES"
check "... they stored every instance" \
	"$(summaries | sed -E 's/.* ([0-9]+) instances? stored.*/\1/' | awk '{ n += $1 } END { print n }')" "$NINST"
run all
exit_is "all again" 0
no_line "... runs no metadata job" "$OUT" '\] metadata '
run -n
exit_is "-n" 0
no_line "-n: nothing stale (no metadata line)" "$OUT" '^metadata '
cat "$OUT" "$ERR" >"$LOG/n.out"
has_line "-n: ... says everything is up to date" "$LOG/n.out" 'nothing to do: everything is up to date'
run -q
exit_is "-q: up to date" 0

section "-B metadata reads every header again"
sum_before=$(sql 'SELECT sop_uid, header FROM metadata ORDER BY 1' | sha256sum)
run -B metadata
exit_is "-B metadata" 0
count_is "one metadata job per series" "$OUT" '\] metadata ' "$NSERIES"
check "... the headers read add up to the instances" \
	"$(summaries | sed -E 's/.* ([0-9]+) headers? read$/\1/' | awk '{ n += $1 } END { print n }')" "$NINST"
check "... each job read what it stored" \
	"$(summaries | sed -E 's/.* ([0-9]+) instances? stored, ([0-9]+) headers? read$/\1 \2/' | awk '$1 != $2' | wc -l)" 0
no_line "... validate and download do not run" "$OUT" '\] (validate|download) '
check "... the rows are what validate handed over (the two paths agree)" \
	"$(sql 'SELECT sop_uid, header FROM metadata ORDER BY 1' | sha256sum)" "$sum_before"
stored "$LOG/stored-B.jsonl"
"$PY" "$CHECK" "$LOG/stored-B.jsonl" "$SRC"/*.dcm >"$LOG/cmp-B.out" 2>&1
check "... and as pydicom reads them (metadata_check.py exit 0)" "$?" 0
grep -v ': ok, ' "$LOG/cmp-B.out" | sed -n '1,10s/^/    /p'

# ---- 3. sequences -----------------------------------------------------------

section "sequences: items and their nested values"
# py FILE EXPR : EXPR of pydicom's dataset ds of $SRC/FILE, printed.
py() { "$PY" -c 'import sys, pydicom; ds = pydicom.dcmread(sys.argv[1]); print(eval(sys.argv[2]))' "$SRC/$1" "$2"; }
# at FILE PATH : SQLite's json_extract(header, PATH) in FILE's row.
at() { sql "SELECT json_extract(header, '$2') FROM metadata WHERE sop_uid = '$(sop_of "$1")'"; }
check "rtplan: BeamSequence > ControlPointSequence: as many items" \
	"$(at rtplan.dcm '$."300A00B0".Value[0]."300A0111".Value' | "$PY" -c 'import json, sys; print(len(json.load(sys.stdin)))')" \
	"$(py rtplan.dcm 'len(ds.BeamSequence[0].ControlPointSequence)')"
check "rtplan: BeamSequence[0] > ControlPointSequence[0] > BeamLimitingDevicePositionSequence[1]: RTBeamLimitingDeviceType" \
	"$(at rtplan.dcm '$."300A00B0".Value[0]."300A0111".Value[0]."300A011A".Value[1]."300A00B8".Value[0]')" \
	"$(py rtplan.dcm 'ds.BeamSequence[0].ControlPointSequence[0].BeamLimitingDevicePositionSequence[1].RTBeamLimitingDeviceType')"
check "... its LeafJawPositions (DS, two values)" \
	"$(at rtplan.dcm '$."300A00B0".Value[0]."300A0111".Value[0]."300A011A".Value[1]."300A011C".Value' |
		"$PY" -c 'import json, sys; print([float(x) for x in json.load(sys.stdin)])')" \
	"$(py rtplan.dcm '[float(x) for x in ds.BeamSequence[0].ControlPointSequence[0].BeamLimitingDevicePositionSequence[1].LeafJawPositions]')"
check "test-SR: ContentSequence[1] > [3] > [2]: TextValue, three levels down" \
	"$(at test-SR.dcm '$."0040A730".Value[1]."0040A730".Value[3]."0040A730".Value[2]."0040A160".Value[0]')" \
	"$(py test-SR.dcm 'ds.ContentSequence[1].ContentSequence[3].ContentSequence[2].TextValue')"
check "test-SR: ContentSequence[2] > [0]: a TextValue with line breaks and a non-ASCII §" \
	"$(at test-SR.dcm '$."0040A730".Value[2]."0040A730".Value[0]."0040A160".Value[0]')" \
	"$(py test-SR.dcm 'ds.ContentSequence[2].ContentSequence[0].TextValue.rstrip()')"

# ---- 5. -t metadata ------------------------------------------------------------

section "-t metadata: JSON Lines"
run -t metadata
exit_is "-t metadata" 0
cp "$OUT" "$LOG/all.jsonl"
check "one line per instance" "$(wc -l <"$LOG/all.jsonl")" "$NINST"
"$PY" - "$LOG/all.jsonl" "$LOG/facts.tsv" >"$LOG/jsonl.out" 2>&1 <<'EOF'
import json, sys
facts = {}
for line in open(sys.argv[2], encoding="utf-8"):
    name, pat, study, series, sop = line.rstrip("\n").split("\t")[:5]
    facts[sop] = (pat, study, series, sop)
keys = ["PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "header"]
seen = set()
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    try:
        o = json.loads(line)
    except ValueError as e:
        print("line %d: not JSON: %s" % (n, e))
        continue
    if list(o) != keys:
        print("line %d: keys %s" % (n, list(o)))
        continue
    sop = o["SOPInstanceUID"]
    if sop not in facts or tuple(o[k] for k in keys[:4]) != facts[sop]:
        print("line %d: %s, the file says %s" % (n, [o[k] for k in keys[:4]], facts.get(sop)))
    if o["header"].get("00080018", {}).get("Value") != [sop]:
        print("line %d: the header's SOPInstanceUID is not the line's" % n)
    seen.add(sop)
print("%d instances, %d missing" % (len(seen), len(set(facts) - seen)))
EOF
check "every line parses, keys PatientID..SOPInstanceUID, header, the file's UIDs" \
	"$(cat "$LOG/jsonl.out")" "$NINST instances, 0 missing"
"$PY" "$CHECK" "$LOG/all.jsonl" "$SRC"/*.dcm >"$LOG/cmp-t.out" 2>&1
check "the headers -t metadata prints are pydicom's (metadata_check.py exit 0)" "$?" 0
run -t metadata 1CT1 SliceThickness ImageType
exit_is "-t metadata 1CT1 SliceThickness ImageType" 0
check "... a line per instance of 1CT1, the keywords' Value arrays instead of the header" \
	"$(sort "$OUT")" \
	"$(printf '{"PatientID":"1CT1","StudyInstanceUID":"%s","SeriesInstanceUID":"%s","SOPInstanceUID":"%s","SliceThickness":[%s],"ImageType":["ORIGINAL","PRIMARY","AXIAL"]}\n' \
		"$(awk -F'\t' '$1 == "CT_small.dcm" { print $3 }' "$LOG/facts.tsv")" "$THIN" "$THIN1" 0.625 \
		"$(awk -F'\t' '$1 == "CT_small.dcm" { print $3 }' "$LOG/facts.tsv")" "$THIN" "$THIN2" 0.625 \
		"$(awk -F'\t' '$1 == "CT_small.dcm" { print $3 }' "$LOG/facts.tsv")" \
		"$(awk -F'\t' '$1 == "CT_small.dcm" { print $4 }' "$LOG/facts.tsv")" "$(sop_of CT_small.dcm)" 5.0 | sort)"
run -t metadata 4MR1
exit_is "-t metadata 4MR1 (one patient by target)" 0
check "... its one instance only" "$(wc -l <"$OUT") $(cut -d, -f1-4 "$OUT")" "1 {\"PatientID\":\"4MR1\",\"StudyInstanceUID\":\"$(awk -F'\t' '$1 == "MR_small.dcm" { print $3 }' "$LOG/facts.tsv")\",\"SeriesInstanceUID\":\"$(awk -F'\t' '$1 == "MR_small.dcm" { print $4 }' "$LOG/facts.tsv")\",\"SOPInstanceUID\":\"$(sop_of MR_small.dcm)\""

section "-t metadata --format csv"
run -t metadata --format csv SliceThickness ImageType
exit_is "--format csv SliceThickness ImageType" 0
check "... header row: the keywords" "$(head -n 1 "$OUT")" "SliceThickness,ImageType"
check "... a row per instance" "$(tail -n +2 "$OUT" | wc -l)" "$NINST"
has_line "... multiple values joined by \\ (CT_small's ImageType)" "$OUT" '^5\.0,ORIGINAL\\PRIMARY\\AXIAL$'
check "... the rows are pydicom's values (numbers as numbers, \\-joined)" \
	"$("$PY" - "$OUT" "$SRC"/*.dcm <<'EOF'
import csv, sys, pydicom
def norm(st, it):
    return (float(st) if st not in (None, "") else None, it)
got = sorted((norm(r[0], r[1]) for r in list(csv.reader(open(sys.argv[1])))[1:]), key=repr)
want = []
for f in sys.argv[2:]:
    ds = pydicom.dcmread(f, stop_before_pixels=True)
    it = ds.get("ImageType")
    # CS: leading and trailing spaces are padding, dropped from each value
    it = "" if it is None else "\\".join(v.strip() for v in it) if not isinstance(it, str) else it
    want.append(norm(ds.get("SliceThickness"), it))
want.sort(key=repr)
print("same" if got == want else "got %s\nwant %s" % (got, want))
EOF
)" same
run -t metadata --format csv 1CT1
exit_is "--format csv 1CT1 (default columns)" 0
check "... header row: the default keywords" "$(head -n 1 "$OUT")" \
	"PatientID,StudyInstanceUID,SeriesInstanceUID,SOPInstanceUID,Modality,SeriesNumber,InstanceNumber"
check "... 1CT1's three instances, with Modality, SeriesNumber, InstanceNumber" \
	"$(tail -n +2 "$OUT" | cut -d, -f1,3-7 | sort)" \
	"$(printf '1CT1,%s,%s,CT,2,1\n1CT1,%s,%s,CT,2,2\n1CT1,%s,%s,CT,1,1\n' "$THIN" "$THIN1" "$THIN" "$THIN2" \
		"$(awk -F'\t' '$1 == "CT_small.dcm" { print $4 }' "$LOG/facts.tsv")" "$(sop_of CT_small.dcm)" | sort)"

section "-t metadata refusals"
run -t status --format jsonl
exit_is "-t status --format jsonl" 2
has_line "... says which formats -t status takes" "$ERR" 'status.*--format jsonl.*(table|csv)'
run -t metadata --format table
exit_is "-t metadata --format table" 2
has_line "... says which formats -t metadata takes" "$ERR" 'metadata --format table.*jsonl.*csv'
cp thlhp.ini "$LOG/thlhp.ini.meta"
write_config 'select.patient_id=*'
run -t metadata
exit_is "-t metadata without [metadata]" 2
has_line "... says there is no [metadata] section" "$ERR" 'thlhp\.ini: no \[metadata\] section'
is_empty "... and prints no row" "$OUT"
cp "$LOG/thlhp.ini.meta" thlhp.ini

# ---- 2. max_value_bytes ----------------------------------------------------

section "max_value_bytes = 16K: the 10 KB private element is kept"
config_meta 16K
run -q
exit_is "-q after the setting changed" 1
run -n
exit_is "-n" 0
has_line "-n: the thin series is stale because of the setting" "$OUT" \
	"^metadata +1CT1 ${THIN//./\\.} +stored with max_value_bytes=4096$"
count_is "-n: ... as is every series (and only the metadata stage)" "$OUT" \
	'^metadata .* stored with max_value_bytes=4096$' "$NSERIES"
has_line "-n: ... and it counts them" "$OUT" "^$NSERIES targets stale: $NSERIES metadata$"
run all
exit_is "all" 0
has_line "the thin series is stored again, read from its files" "$OUT" \
	'\] metadata 1CT1 #2 thin bone  2 instances stored, 2 headers read$'
check "the private element (0071,1010) is in both rows, its 10,240 bytes" \
	"$(sql "SELECT json_extract(header, '\$.\"00711010\".vr'), json_extract(header, '\$.\"00711010\".InlineBinary')
		FROM metadata WHERE series_uid = '$THIN'" |
	   "$PY" -c 'import base64, sys
for line in sys.stdin:
    vr, b = line.rstrip("\n").split("|")
    print(vr, base64.b64decode(b) == bytes(range(256)) * 40)')" "$(printf 'OB True\nOB True')"
stored "$LOG/stored-16k.jsonl"
"$PY" "$CHECK" --max 16384 "$LOG/stored-16k.jsonl" "$SRC"/*.dcm >"$LOG/cmp-16k.out" 2>&1
check "every row is pydicom's at max 16384 (metadata_check.py --max 16384 exit 0)" "$?" 0
grep -v ': ok, ' "$LOG/cmp-16k.out" | sed -n '1,10s/^/    /p'
run -t metadata
exit_is "-t metadata" 0
cp "$OUT" "$LOG/meta-16k.jsonl"
run -n
no_line "-n afterwards: nothing stale" "$OUT" '^metadata '

# ---- 6. SQL: SQLite, then PostgreSQL ---------------------------------------------

section "SQL on SQLite: json_extract"
thin_series=$(awk -F'\t' '$7 != "-" && $7 + 0 <= 1 { print $4 }' "$LOG/facts.tsv" | sort -u)
check "the source has two series 1 mm thick or thinner (MR_small 0.8, the thin CT 0.625)" \
	"$(printf '%s\n' "$thin_series" | wc -l)" 2
check "series with SliceThickness <= 1: json_extract(header, '\$.\"00180050\".Value[0]') <= 1" \
	"$(sql "SELECT DISTINCT series_uid FROM metadata WHERE json_extract(header, '\$.\"00180050\".Value[0]') <= 1 ORDER BY 1")" \
	"$thin_series"
sqlite3 -header -column "$DB" <"$QUERIES/metadata-queries-sqlite.sql" >"$LOG/queries-sqlite.txt" 2>&1
check "metadata-queries-sqlite.sql runs (exit 0)" "$?" 0
sqlite3 -list "$DB" <"$QUERIES/metadata-queries-sqlite.sql" >"$LOG/queries-sqlite.rows" 2>&1
check "... query 1: the two thin series, with their thickness and instances" \
	"$(head -n 2 "$LOG/queries-sqlite.rows")" \
	"$(printf '1CT1|%s|0.625|2\n4MR1|%s|0.8|1' "$THIN" "$(awk -F'\t' '$1 == "MR_small.dcm" { print $4 }' "$LOG/facts.tsv")")"
check "... query 2: 1CT1's two CT series with their kernels" \
	"$(tail -n +3 "$LOG/queries-sqlite.rows")" \
	"$(printf '%s|thin bone|BONE|2\n%s||STANDARD|1' "$THIN" "$(awk -F'\t' '$1 == "CT_small.dcm" { print $4 }' "$LOG/facts.tsv")" | sort)"

section "SQL on PostgreSQL: jsonb, a GIN index, the same answers"
pg_start
mkdir -p "$T/pgproj" && cd "$T/pgproj" || exit 1
config_meta 16K "state.url=$PG_URL"
run all
exit_is "all with [state] url = postgresql://..." 0
count_is "... each metadata job had its headers handed over by validate" "$OUT" \
	'\] metadata .* stored, 0 headers read$' "$NSERIES"
check "the header column is jsonb" \
	"$(pg_sql "SELECT data_type FROM information_schema.columns WHERE table_name = 'metadata' AND column_name = 'header'" thlhp)" jsonb
check "a GIN index on header" \
	"$(pg_sql "SELECT count(*) FROM pg_indexes WHERE tablename = 'metadata' AND indexdef ~ 'USING gin \\(header'" thlhp)" 1
check "one row per instance" "$(pg_sql 'SELECT count(*) FROM metadata' thlhp)" "$NINST"
pg_sql "SELECT json_build_object('SOPInstanceUID', sop_uid, 'header', header) FROM metadata ORDER BY sop_uid" thlhp \
	>"$LOG/stored-pg.jsonl"
"$PY" "$CHECK" --max 16384 "$LOG/stored-pg.jsonl" "$SRC"/*.dcm >"$LOG/cmp-pg.out" 2>&1
check "every jsonb row is pydicom's (metadata_check.py --max 16384 exit 0)" "$?" 0
grep -v ': ok, ' "$LOG/cmp-pg.out" | sed -n '1,10s/^/    /p'
check "series with SliceThickness <= 1: (header->'00180050'->'Value'->>0)::float <= 1" \
	"$(pg_sql "SELECT DISTINCT series_uid FROM metadata WHERE (header->'00180050'->'Value'->>0)::float <= 1 ORDER BY 1" thlhp)" \
	"$thin_series"
run -t metadata
exit_is "-t metadata on PostgreSQL" 0
check "... the same JSON as on SQLite (16K too)" \
	"$("$PY" -c 'import json, sys
a, b = ([json.loads(l) for l in open(f)] for f in sys.argv[1:])
print(len(a), a == b)' "$OUT" "$LOG/meta-16k.jsonl")" "$NINST True"
"$PG_BIN/psql" -X "$PG_URL" -f "$QUERIES/metadata-queries-pg.sql" >"$LOG/queries-pg.txt" 2>&1
check "metadata-queries-pg.sql runs (exit 0)" "$?" 0
"$PG_BIN/psql" -X -A -t -q "$PG_URL" -f "$QUERIES/metadata-queries-pg.sql" >"$LOG/queries-pg.rows" 2>&1
check "... the same rows as SQLite's" "$(grep -v '^$' "$LOG/queries-pg.rows")" "$(cat "$LOG/queries-sqlite.rows")"
gin=$(pg_sql "SELECT indexname FROM pg_indexes WHERE tablename = 'metadata' AND indexdef ~ 'USING gin'" thlhp)
pg_sql "SET enable_seqscan = off; EXPLAIN SELECT series_uid FROM metadata
	WHERE header @> '{\"00080060\": {\"Value\": [\"CT\"]}}'" thlhp >"$LOG/explain.txt" 2>&1
has_line "... query 2's @> can use it (EXPLAIN, seqscan off: Bitmap Index Scan on $gin)" \
	"$LOG/explain.txt" "Bitmap Index Scan on $gin"
cd "$PROJ" || exit 1

# ---- 4. a changed file -------------------------------------------------------

section "a file of a series replaced by a changed one: the series' rows replaced"
f=data/dicom/1CT1/$(awk -F'\t' '$1 == "ct_thin_2.dcm" { print $3 }' "$LOG/facts.tsv")/$THIN/$THIN2.dcm
ok "$f is where SPEC.md puts it" test -f "$f"
others=$(sql "SELECT sop_uid, header FROM metadata WHERE series_uid <> '$THIN' ORDER BY 1" | sha256sum)
cp "$f" "$LOG/changed.dcm"
"$PY" -c 'import sys, pydicom
ds = pydicom.dcmread(sys.argv[1]); ds.SeriesDescription = "thin bone, edited"; ds.save_as(sys.argv[1])' "$LOG/changed.dcm"
replace_file "$LOG/changed.dcm" "$f"
run -n
has_line "-n: the thin series' metadata is stale after validate" "$OUT" \
	"^metadata +1CT1 ${THIN//./\\.} +after validate \(file changed on disk\)$"
count_is "-n: ... and no other series' metadata" "$OUT" '^metadata ' 1
run all
exit_is "all" 0
count_is "one metadata job" "$OUT" '\] metadata ' 1
has_line "... the thin series': both instances stored, the changed one handed over by validate" "$OUT" \
	'\] metadata 1CT1 #2 thin bone.*  2 instances stored, 1 header read$'
check "the row count stays the same" "$(sql 'SELECT count(*) FROM metadata')" "$NINST"
check "the new SeriesDescription shows in the changed instance's row, the other row keeps its" \
	"$(sql "SELECT sop_uid, json_extract(header, '\$.\"0008103E\".Value[0]') FROM metadata WHERE series_uid = '$THIN' ORDER BY 1")" \
	"$(printf '%s|thin bone\n%s|thin bone, edited' "$THIN1" "$THIN2")"
check "the other series' rows are untouched" \
	"$(sql "SELECT sop_uid, header FROM metadata WHERE series_uid <> '$THIN' ORDER BY 1" | sha256sum)" "$others"
run -q
exit_is "-q afterwards: up to date" 0


section "the README's queries, their real output"
say "--- SQLite: sqlite3 -header -column .thlhp/state.db < tests/integration/metadata-queries-sqlite.sql"
cat "$LOG/queries-sqlite.txt"
say "--- PostgreSQL: psql -f tests/integration/metadata-queries-pg.sql"
cat "$LOG/queries-pg.txt"

finish
