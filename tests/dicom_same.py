#!/usr/bin/python3
"""dicom_same.py - does an archive hold exactly what was loaded into the PACS?

    dicom_same.py ZIP < lines of "<entry name>\t<source file>"

For every line the entry must exist in ZIP and be the same DICOM object as
the source file: the same transfer syntax (nothing was transcoded), the
same data elements with the same values, pixel data byte for byte.  A PACS
may re-encode what it sends without changing it (Orthanc writes explicit
sequence lengths and drops trailing padding), so the bytes of the files are
not compared, their content is.  The archive must hold no other entry.
Prints one line per difference; exit 0 when there is none.  Run it with
/usr/bin/python3 (Debian's python3-pydicom).
"""

import io
import sys
import zipfile

import pydicom


def load(data):
    ds = pydicom.dcmread(io.BytesIO(data), force=False)
    ds.decode()
    return ds


# Data Set Trailing Padding: no content, and Orthanc drops it.
PADDING = 0xFFFCFFFC


def differences(got, want):
    out = []
    gts = str(got.file_meta.get("TransferSyntaxUID", ""))
    wts = str(want.file_meta.get("TransferSyntaxUID", ""))
    if gts != wts:
        out.append("transfer syntax %s, loaded as %s" % (gts, wts))
    gk = set(e.tag for e in got if e.tag != PADDING)
    wk = set(e.tag for e in want if e.tag != PADDING)
    for tag in sorted(wk - gk):
        out.append("element %s missing" % tag)
    for tag in sorted(gk - wk):
        out.append("element %s added" % tag)
    for tag in sorted(gk & wk):
        if got[tag].value != want[tag].value:
            out.append("element %s (%s) differs" % (tag, got[tag].keyword))
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: dicom_same.py ZIP < entry-TAB-source lines")
    bad = 0
    with zipfile.ZipFile(sys.argv[1]) as z:
        names = set(z.namelist())
        seen = set()
        for line in sys.stdin:
            entry, src = line.rstrip("\n").split("\t", 1)
            seen.add(entry)
            if entry not in names:
                print("%s: missing" % entry)
                bad += 1
                continue
            with open(src, "rb") as f:
                want = load(f.read())
            diff = differences(load(z.read(entry)), want)
            for d in diff:
                print("%s: %s" % (entry, d))
            bad += len(diff) > 0
        for extra in sorted(names - seen):
            print("%s: not loaded into the PACS" % extra)
            bad += 1
    sys.exit(1 if bad else 0)


main()
