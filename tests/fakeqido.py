#!/usr/bin/python3
"""fakeqido.py - a small, deliberately literal QIDO-RS server for the
integration tests: it answers exactly what a JSON description says, so a
test can give thlhp-make's DICOMweb query the records a real server gets
wrong.  The QIDO twin of fakepacs.py (same description), standard library
only.

    fakeqido.py --db FILE [--port N] [--log FILE] [--ready FILE]

Listens on 127.0.0.1:N (default 0: any free port); --ready FILE gets the
port once it listens.  SIGTERM/SIGINT: exit.  One thread per connection,
HTTP/1.1 with keep-alive.

The description (--db) is re-read at each request, so a test may change
the server between runs.  Its records nest: patients > studies > series >
instances, as lists under those lower-case keys; every key that starts
with an upper-case letter is a DICOM attribute, and a record inherits its
ancestors' attributes (its own win: a study record may carry another
PatientID than its patient).  An attribute is a keyword of the table KEYS
below, or 8 hex digits with a whole DICOM JSON value ({"vr": ..., "Value":
[...]}) as it is to be sent.  A keyword's value is sent as it is written:
a string as a JSON string, a number as a JSON number, a list as the Value
array.  "instances" may also be a number N: SOPInstanceUID
<series UID>.<i>, SOPClassUID CT Image Storage.

    {"patients": [{"PatientID": "TH-01", "studies": [
        {"StudyInstanceUID": "1.2.3", "StudyDate": "20240101", "series": [
            {"SeriesInstanceUID": "1.2.3.1", "Modality": "CT",
             "NumberOfSeriesRelatedInstances": "3", "instances": 3,
             "fail": {"instances": {"status": 500, "times": 1}}}]}]}]}

Resources, under any prefix ending in /dicom-web (or none):

    GET /studies[?PatientID=GLOB]                 every study record
    GET /studies/{study}/series                   the series of that study
    GET /studies/{study}/series/{series}/instances

A study record matches a PatientID query when its (inherited) PatientID
matches the glob (`*` any run, `?` one character, anything else literal);
no PatientID, or an empty one, matches every study.  A UID in the path
matches every record that has it (one StudyInstanceUID under two patients
lists the series of both).  Other query parameters (includefield,
StudyDate, ...) are ignored: an answer holds exactly the attributes the
description gives, of the record's own level and those above it.  Results
are in description order; `offset` (default 0) skips that many and
`limit` (default: none) keeps at most that many.  The answer is
application/dicom+json, a JSON array, 200 even when empty.  A path of no
such resource: 404.

"fail": {"studies" | "series" | "instances": STATUS} on a record (or on
an ancestor, or the root of the description) makes a request of that
resource answer the HTTP STATUS (e.g. 500) with a short text body, every
time, when it is the record's: /studies matching a study record, the
/series of a study record, the /instances of a series record;
{"status": STATUS, "times": K}: only the first K such requests since the
description last changed.

Log (--log), appended, one line a request:
    <time> GET <path>?<query> <status> <results in the answer>
"""

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"

# keyword: (tag, VR, level) - level: the resource whose records own it.
KEYS = {
    "PatientID": ("00100020", "LO", "patients"),
    "PatientName": ("00100010", "PN", "patients"),
    "PatientBirthDate": ("00100030", "DA", "patients"),
    "PatientSex": ("00100040", "CS", "patients"),
    "StudyInstanceUID": ("0020000D", "UI", "studies"),
    "StudyDate": ("00080020", "DA", "studies"),
    "StudyTime": ("00080030", "TM", "studies"),
    "AccessionNumber": ("00080050", "SH", "studies"),
    "StudyID": ("00200010", "SH", "studies"),
    "StudyDescription": ("00081030", "LO", "studies"),
    "ModalitiesInStudy": ("00080061", "CS", "studies"),
    "SOPClassesInStudy": ("00080062", "UI", "studies"),
    "NumberOfStudyRelatedSeries": ("00201206", "IS", "studies"),
    "NumberOfStudyRelatedInstances": ("00201208", "IS", "studies"),
    "SeriesInstanceUID": ("0020000E", "UI", "series"),
    "Modality": ("00080060", "CS", "series"),
    "SeriesNumber": ("00200011", "IS", "series"),
    "SeriesDescription": ("0008103E", "LO", "series"),
    "NumberOfSeriesRelatedInstances": ("00201209", "IS", "series"),
    "SOPInstanceUID": ("00080018", "UI", "instances"),
    "SOPClassUID": ("00080016", "UI", "instances"),
    "InstanceNumber": ("00200013", "IS", "instances"),
}
LEVELS = ("patients", "studies", "series", "instances")
HEX = re.compile(r"^[0-9A-Fa-f]{8}$")

args = None
lock = threading.Lock()
fail_state = {"db": None, "counts": {}}


def load():
    """The description, and with the lock: its failure counters, reset
    when its text changed."""
    with open(args.db, "rb") as f:
        text = f.read()
    db = json.loads(text)
    with lock:
        if fail_state["db"] != text:
            fail_state["db"], fail_state["counts"] = text, {}
    return db


def records(db):
    """(level, attrs, chain) for every record, in order; attrs are the
    record's own and inherited attributes, chain its (position, node)
    pairs from the root of the description down to it."""
    out = []

    def own(node):
        return {k: v for k, v in node.items() if k[:1].isupper() or HEX.match(k)}

    root = [((), db)]
    for a, p in enumerate(db.get("patients", [])):
        pa = own(p)
        for b, s in enumerate(p.get("studies", [])):
            sa = dict(pa, **own(s))
            sc = root + [((a,), p), ((a, b), s)]
            out.append(("studies", sa, sc))
            for c, se in enumerate(s.get("series", [])):
                sea = dict(sa, **own(se))
                sec = sc + [((a, b, c), se)]
                out.append(("series", sea, sec))
                inst = se.get("instances", [])
                if isinstance(inst, int):
                    uid = sea.get("SeriesInstanceUID", "")
                    inst = [{"SOPInstanceUID": "%s.%d" % (uid, i + 1), "SOPClassUID": CT_IMAGE}
                            for i in range(inst)]
                for d, i in enumerate(inst):
                    out.append(("instances", dict(sea, **own(i)), sec + [((a, b, c, d), i)]))
    return out


def encode(attrs, level):
    """The DICOM JSON object of a record at level: its attributes of that
    level and those above, exactly as described."""
    top = LEVELS.index(level)
    obj = {}
    for k, v in attrs.items():
        if HEX.match(k):
            obj[k.upper()] = v
            continue
        if k not in KEYS:
            continue
        tag, vr, lv = KEYS[k]
        if LEVELS.index(lv) > top:
            continue
        obj[tag] = {"vr": vr, "Value": v if isinstance(v, list) else [v]}
    return obj


def glob_re(g):
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                              for c in g) + r"\Z", re.S)


def failure(level, chain):
    """The HTTP status a request of resource level matching the record of
    chain must fail with, or None (counting a limited failure).  The
    record's own "fail" first, then its ancestors'."""
    for pos, n in chain[::-1]:
        f = n.get("fail", {}).get(level) if isinstance(n, dict) else None
        if f is None:
            continue
        if isinstance(f, int):
            return f
        with lock:
            key = pos, level
            used = fail_state["counts"].get(key, 0)
            if used >= f.get("times", 1 << 62):
                return None
            fail_state["counts"][key] = used + 1
        return int(f["status"])
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def log(self, status, n):
        if args.log:
            with lock, open(args.log, "a") as f:
                f.write("%.3f GET %s %d %d\n" % (time.time(), self.path, status, n))

    def send(self, status, ctype, body, n=0):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.log(status, n)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        path = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        if "dicom-web" in path:
            path = path[path.index("dicom-web") + 1:]
        try:
            db = load()
        except (OSError, ValueError) as e:
            self.send(500, "text/plain", ("bad description: %s\n" % e).encode())
            return
        if len(path) == 1 and path[0] == "studies":
            level, want = "studies", {}
            pid = q.get("PatientID", [""])[0]
            match = glob_re(pid) if pid else None
        elif len(path) == 3 and path[0] == "studies" and path[2] == "series":
            level, want, match = "series", {"StudyInstanceUID": path[1]}, None
        elif (len(path) == 5 and path[0] == "studies" and path[2] == "series"
              and path[4] == "instances"):
            level, want, match = "instances", {"StudyInstanceUID": path[1],
                                               "SeriesInstanceUID": path[3]}, None
        else:
            self.send(404, "text/plain", b"no such resource\n")
            return
        hits, owners = [], []
        parent = {"studies": "studies", "series": "studies", "instances": "series"}[level]
        for lv, attrs, chain in records(db):
            if lv not in (level, parent) or any(attrs.get(k) != v for k, v in want.items()):
                continue
            if match and not match.match(str(attrs.get("PatientID", ""))):
                continue
            if lv == parent:
                owners.append(chain)
            if lv == level:
                hits.append((attrs, chain))
        # A failure is the resource's owner's: a study's for its series, a
        # series' for its instances (so an empty one can fail too).
        for chain in owners:
            status = failure(level, chain)
            if status is not None:
                self.send(status, "text/plain", b"the description says this fails\n")
                return
        off = int(q.get("offset", ["0"])[0] or 0)
        lim = q.get("limit", [""])[0]
        hits = hits[off:off + int(lim)] if lim else hits[off:]
        body = json.dumps([encode(a, level) for a, _ in hits]).encode()
        self.send(200, "application/dicom+json", body, len(hits))


def main():
    global args
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log")
    ap.add_argument("--ready")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.ready:
        tmp = args.ready + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(tmp, args.ready)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
