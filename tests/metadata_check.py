#!/usr/bin/python3
"""metadata_check.py - are the stored headers what pydicom reads in the files?

    metadata_check.py [--max N] JSONL FILE...

JSONL holds one stored header a line, as `thlhp-make -t metadata` prints
them (or a SELECT of the metadata table writes them): an object with
"SOPInstanceUID" and "header" (DICOM JSON, PS3.18 F.2).  For each FILE the
line of its SOPInstanceUID (exactly one) is compared with what pydicom
reads in FILE, element by element and into sequence items, by
dcmjson_check.py's comparison: every element is there with the same VR and
value, except bulk data (Pixel Data, Waveform Data, ...) and values longer
than N bytes (default 4096), which must be absent.

Prints one line per difference ("FILE: TAG KEYWORD: what") and, per file,
"FILE: ok, E elements (S sequences, I items) compared"; exit 0 when no
file differs.  Run it with /usr/bin/python3 (Debian's python3-pydicom).
"""

import json
import os
import sys

import pydicom

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dcmjson_check  # noqa: E402  (the same comparison as the unit test's)


def counts(ds, max_value):
    """Elements, sequences and items of ds that the JSON must hold."""
    n = nseq = nitems = 0
    for elem in ds:
        tag = int(elem.tag)
        if tag & 0xFFFF == 0 or dcmjson_check.bulk(tag):
            continue
        n += 1
        if elem.VR == "SQ":
            nseq += 1
            for item in elem.value:
                nitems += 1
                a, b, c = counts(item, max_value)
                n, nseq, nitems = n + a, nseq + b, nitems + c
    return n, nseq, nitems


def main(argv):
    max_value = 4096
    if len(argv) > 2 and argv[1] == "--max":
        max_value = int(argv[2])
        argv = argv[2:]
    if len(argv) < 3:
        sys.exit(__doc__)
    by_sop = {}
    with open(argv[1], encoding="utf-8") as fp:
        for i, line in enumerate(fp, 1):
            obj = json.loads(line)
            by_sop.setdefault(obj["SOPInstanceUID"], []).append(obj["header"])
    bad = 0
    for f in argv[2:]:
        name = os.path.basename(f)
        ds = pydicom.dcmread(f)
        sop = str(ds.SOPInstanceUID)
        headers = by_sop.get(sop, [])
        if len(headers) != 1:
            print("%s: %d stored headers for SOP %s, want 1" % (name, len(headers), sop))
            bad += 1
            continue
        out, notes = [], []
        dcmjson_check.compare(name, ds, headers[0], not ds.is_little_endian, max_value, out,
                              notes)
        for line in out:
            print(line)
        bad += len(out)
        if not out:
            n, nseq, nitems = counts(ds, max_value)
            print("%s: ok, %d elements (%d sequences, %d items) compared%s" % (
                name, n, nseq, nitems,
                ", %d kept as UN" % len(notes) if notes else ""))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main(sys.argv)
