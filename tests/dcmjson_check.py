#!/usr/bin/python3
"""dcmjson_check.py - is the DICOM JSON of a file what pydicom reads in it?

    dcmjson_check.py [--max N] CMD FILE...

Runs `CMD FILE N` for each FILE, which prints the file's header as DICOM JSON
(PS3.18 F.2) as dcm_json() writes it with max_value N (default 4096), and
compares every data element pydicom reads in the dataset, sequence items
included, with it: present, the same VR, the same value.  What dcm_json
leaves out must be absent: bulk data (Pixel Data, Float and Double Float
Pixel Data, Waveform Data, Overlay Data) and values longer than N bytes;
what follows Pixel Data is not read at all.  Prints one line per
difference, "FILE: TAG KEYWORD: what"; exit 0 when there is none.  Run it
with /usr/bin/python3 (Debian's python3-pydicom).

Not differences: what DCMTK normalizes (the padding of every value of a
multi-valued string, a PN of delimiters only as no value, an odd binary
value padded to even, SpecificCharacterSet "ISO_IR 192" after converting
to UTF-8), and an element DCMTK keeps as UN whose VR pydicom's dictionary
knows (UN in the file, or a private tag): its bytes are compared, and a
note line counts them.
"""

import base64
import json
import math
import subprocess
import sys

import pydicom
from pydicom.valuerep import PersonName

BULK = {0x7FE00010, 0x7FE00008, 0x7FE00009, 0x54001010}
PIXEL_DATA = 0x7FE00010
CHARSET = 0x00080005
NUMBERS = {"IS", "DS", "US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"}
BINARY = {"OB", "OW", "OD", "OF", "OL", "OV", "UN"}


def bulk(tag):
    return tag in BULK or ((tag >> 16) & 0xFF01) == 0x6000 and tag & 0xFFFF == 0x3000


def values(elem):
    """The element's value as a list, as JSON has it (None for empty)."""
    v = elem.value
    if v is None or v == "" or v == b"":
        return []
    if isinstance(v, (list, pydicom.multival.MultiValue)):
        return list(v)
    return [v]


def pn_text(v):
    """A PN value as DICOM text: its component groups joined by '='."""
    if v is None or v == "":
        return None
    if isinstance(v, PersonName):
        groups = list(v.components)
    else:
        groups = str(v).split("=")
    # DCMTK writes a name of delimiters only as no name
    groups = ["" if not g.strip("^ ") else g for g in groups]
    while groups and not groups[-1]:
        groups.pop()
    return "=".join(groups) or None


def json_pn(v):
    if v is None:
        return None
    groups = [v.get("Alphabetic", ""), v.get("Ideographic", ""), v.get("Phonetic", "")]
    while groups and not groups[-1]:
        groups.pop()
    return "=".join(groups) or None


def same_number(a, b, vr):
    if a is None or b is None or a == "" or b == "":
        return (a in (None, "")) == (b in (None, ""))
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return str(a).strip() == str(b).strip()
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    tol = 1e-6 if vr == "FL" else 1e-12
    return x == y or abs(x - y) <= tol * max(abs(x), abs(y))


def compare(where, ds, obj, big_endian, max_value, out, notes):
    """Compare the pydicom Dataset ds with the JSON object obj: differences
    into out, the tags DCMTK kept as UN and pydicom converted into notes."""
    seen = set()
    for raw_tag in list(ds.keys()):
        tag = int(raw_tag)
        if tag & 0xFFFF == 0:  # group lengths: DCMTK never writes them
            continue
        key = "%08X" % tag
        if tag > PIXEL_DATA and where.count("/") == 0:
            if key in obj:
                out.append("%s %s: present, but it follows Pixel Data" % (where, key))
            continue
        raw = ds.get_item(raw_tag)
        length = getattr(raw, "length", None)
        elem = ds[raw_tag]
        name = "%s %s %s" % (where, key, elem.keyword or "private" if elem.tag.is_private else elem.keyword)
        if bulk(tag):
            if key in obj:
                out.append("%s: bulk data present" % name)
            continue
        if elem.VR != "SQ" and max_value and length is not None and length > max_value and tag != CHARSET:
            if key in obj:
                out.append("%s: %d bytes > %d, present" % (name, length, max_value))
            continue
        seen.add(key)
        if key not in obj:
            out.append("%s: absent" % name)
            continue
        j = obj[key]
        vr = elem.VR
        rawbytes = raw.value or b""
        if j.get("vr") == "UN" and vr != "UN" and isinstance(rawbytes, bytes):
            # UN in the file (or a private element only pydicom's
            # dictionary knows): DCMTK keeps the bytes, pydicom converts.
            got = base64.b64decode(j.get("InlineBinary", ""))
            if got.rstrip(b"\0 ") != rawbytes.rstrip(b"\0 "):
                out.append("%s: UN InlineBinary differs from the bytes in the file" % name)
            else:
                notes.append(key)
            continue
        if j.get("vr") != vr and not (vr == "UN" and j.get("vr") == "SQ"):
            out.append("%s: vr %s, pydicom %s" % (name, j.get("vr"), vr))
        if vr == "SQ" or j.get("vr") == "SQ":
            items = elem.value if vr == "SQ" else None
            jitems = j.get("Value", [])
            if items is None:
                continue
            if len(items) != len(jitems):
                out.append("%s: %d items, pydicom %d" % (name, len(jitems), len(items)))
                continue
            for i, (item, jitem) in enumerate(zip(items, jitems)):
                compare("%s/%s[%d]" % (where, key, i), item, jitem, big_endian, max_value, out,
                        notes)
            continue
        if vr in BINARY:
            want = elem.value if isinstance(elem.value, bytes) else None
            if want is None:
                continue  # pydicom converted it (e.g. an implicit VR private it knows)
            if vr == "OW" and big_endian:
                want = b"".join(want[i:i + 2][::-1] for i in range(0, len(want), 2))
            got = base64.b64decode(j["InlineBinary"]) if "InlineBinary" in j else b""
            if len(want) % 2 and got == want + b"\0":
                continue  # DCMTK pads an odd length to even
            if got != want:
                out.append("%s: InlineBinary %d bytes, pydicom %d bytes%s" % (
                    name, len(got), len(want), "" if len(got) != len(want) else " (differ)"))
            continue
        want = values(elem)
        got = j.get("Value", [])
        if tag == CHARSET and got == ["ISO_IR 192"]:
            continue  # converted to UTF-8
        if vr == "PN":
            want = [pn_text(v) for v in want]
            got = [json_pn(v) for v in got]
            if not any(want):
                want = []
        elif vr == "AT":
            want = ["%08X" % int(v) for v in want]
        elif vr in NUMBERS:
            if len(want) != len(got) or not all(same_number(a, b, vr) for a, b in zip(want, got)):
                out.append("%s: %s, pydicom %s" % (name, json.dumps(got)[:80], str(want)[:80]))
            continue
        else:
            # DCMTK drops the padding of each value, pydicom of the last
            want = [None if v in (None, "") else str(v).rstrip(" ") or None for v in want]
        if want != got:
            out.append("%s: %s, pydicom %s" % (name, json.dumps(got, ensure_ascii=False)[:100],
                                               json.dumps(want, ensure_ascii=False)[:100]))
    for key in obj:
        if key not in seen and not bulk(int(key, 16)):
            if int(key, 16) & 0xFFFF0000 == 0x00020000:
                out.append("%s %s: file meta information in the dataset" % (where, key))
            elif key not in {"%08X" % int(t) for t in ds.keys()}:
                out.append("%s %s: in the JSON, not read by pydicom" % (where, key))


def main(argv):
    max_value = 4096
    if len(argv) > 2 and argv[1] == "--max":
        max_value = int(argv[2])
        argv = argv[2:]
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd, files = argv[1], argv[2:]
    bad = 0
    for f in files:
        out, notes = [], []
        try:
            ds = pydicom.dcmread(f, force=True)
        except Exception as e:  # noqa: BLE001 - any reading error is a skip
            print("%s: pydicom cannot read it (%s), skipped" % (f, e))
            continue
        p = subprocess.run([cmd, f, str(max_value)], capture_output=True, text=True)
        if p.returncode != 0:
            print("%s: %s" % (f, p.stderr.strip() or "exit %d" % p.returncode))
            bad += 1
            continue
        obj = json.loads(p.stdout)
        big = not ds.is_little_endian
        compare(f.rsplit("/", 1)[-1], ds, obj, big, max_value, out, notes)
        for line in out:
            print(line)
        if notes:
            print("%s: note: %d elements UN in the JSON, pydicom knows their VR (%s)" % (
                f, len(notes), " ".join(notes[:4]) + (" ..." if len(notes) > 4 else "")))
        bad += len(out)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main(sys.argv)
