#!/usr/bin/python3
"""fakepacs.py - a small, deliberately quirky DICOM C-FIND SCP for the
integration tests: it answers exactly what a JSON description says, so a
test can give thlhp-make's query the records a real PACS gets wrong.

    fakepacs.py --db FILE --port N [--aet AET] [--max-assoc N] [--log FILE]
                [--ready FILE] [--no-patient-root]

Listens on 127.0.0.1:N (0: any free port).  --ready FILE gets the port once
it listens.  SIGTERM/SIGINT: exit.  Standard library and pydicom (its data
dictionary, and reading the request identifiers); one thread per
association.

Associations: an A-ASSOCIATE-RQ called AET (default FAKEPACS) is accepted
(A-ASSOCIATE-AC) while fewer than --max-assoc (default: no limit) are open,
else A-ASSOCIATE-RJ (transient, local limit exceeded); another called AE
title is rejected permanently.  Presentation contexts of Patient Root FIND
(1.2.840.10008.5.1.4.1.2.1.1, refused with --no-patient-root), Study Root
FIND (...2.2.1) and Verification that offer Implicit VR Little Endian are
accepted with it; every other context is refused.  C-ECHO-RQ: success.
A-RELEASE-RQ: A-RELEASE-RP and close.  A-ABORT: close.

The description (--db) is re-read at each association, so a test may change
the PACS between runs.  Its records nest: patients > studies > series >
instances, as lists under those lower-case keys; every key that starts with
an upper-case letter is a DICOM attribute (keyword: string value), and a
record inherits its ancestors' attributes (its own win: a study record may
carry another PatientID than its patient).  "instances" may also be a number
N: SOPInstanceUID <series UID>.<i>, SOPClassUID CT Image Storage.

    {"patients": [{"PatientID": "TH-01", "studies": [
        {"StudyInstanceUID": "1.2.3", "StudyDate": "20240101", "series": [
            {"SeriesInstanceUID": "1.2.3.1", "Modality": "CT",
             "NumberOfSeriesRelatedInstances": "3", "instances": 3,
             "fail": {"IMAGE": {"status": "0xC000", "times": 1}}}]}]}]}

C-FIND-RQ: the identifier's QueryRetrieveLevel picks the records; a record
matches when each non-empty key of its own level that it gives matches
(PATIENT: PatientID; STUDY: StudyInstanceUID, StudyDate; SERIES:
SeriesInstanceUID, Modality; IMAGE: SOPInstanceUID), and so do its
ancestors.  Matching: `*` and `?` wildcards, a backslash list of UIDs, a
DICOM date range (A-B, A-, -B).  One pending response (0xFF00) per match,
holding QueryRetrieveLevel and each requested key that the record (with its
inherited attributes) gives - nothing else, so an attribute left out of the
description is left out of the answer.  Then the final response 0x0000; or,
when a matched record (or the root of the description) has "fail" for the
request's level - "0xC000" (always) or {"status": ..., "times": K} (the
first K such requests since the description last changed) - that status
alone, no pending ones.  A
PATIENT-level query of the Study Root model fails with 0xA900.  C-CANCEL-RQ
is read and ignored (all answers are already sent).

Log (--log), appended, one line each, fields separated by single spaces:
    <time> <assoc> ASSOCIATE <calling AET> <called AET> <open associations>
    <time> <assoc> REJECT <reason>
    <time> <assoc> FIND <PATIENT|STUDY>-ROOT <LEVEL> <Keyword=value>...
    <time> <assoc> FIND-RSP <LEVEL> <matches> <final status 0xNNNN>
    <time> <assoc> ECHO | RELEASE | ABORT | CLOSE
The FIND line lists every element of the identifier in the order sent
(empty values as `Keyword=`; whitespace in a value becomes `_`).
"""

import argparse
import io
import json
import os
import re
import signal
import socket
import struct
import sys
import threading
import time

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.filereader import read_dataset

PATIENT_ROOT, STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.1.1", "1.2.840.10008.5.1.4.1.2.2.1"
VERIFICATION, IMPLICIT_LE = "1.2.840.10008.1.1", "1.2.840.10008.1.2"
APP_CONTEXT, CT_IMAGE = "1.2.840.10008.3.1.1.1", "1.2.840.10008.5.1.4.1.1.2"
LEVELS = ["PATIENT", "STUDY", "SERIES", "IMAGE"]
CHILDREN = {"PATIENT": "studies", "STUDY": "series", "SERIES": "instances"}
OWN_KEYS = {"PATIENT": ["PatientID"], "STUDY": ["StudyInstanceUID", "StudyDate"],
            "SERIES": ["SeriesInstanceUID", "Modality"], "IMAGE": ["SOPInstanceUID"]}
ARGS, LOCK, STATE = None, threading.Lock(), {"open": 0, "next": 0, "fails": {}}


class Closed(Exception):
    """The peer went away, or spoke something we do not follow."""


def log(assoc, *words):
    if ARGS.log:
        with LOCK, open(ARGS.log, "a") as f:
            f.write("%.3f %s %s\n" % (time.time(), assoc, " ".join(str(w) for w in words)))


# ---- encoding: Implicit VR Little Endian, exactly the bytes asked for ----

def element(tag, value):
    vr = dictionary_VR(tag)
    if vr in ("US", "UL"):
        raw = struct.pack("<H" if vr == "US" else "<I", int(value))
    else:
        raw = str(value).encode("latin-1", "replace")
        if len(raw) % 2:
            raw += b"\0" if vr == "UI" else b" "
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(raw)) + raw


def encode(pairs):
    """[(keyword, value)] -> an identifier, elements in tag order."""
    tags = sorted((tag_for_keyword(k), v) for k, v in pairs)
    return b"".join(element(t, v) for t, v in tags)


def command(field, msgid, sop_class, status=None, has_data=False):
    body = element(0x00000002, sop_class) + element(0x00000100, field)
    body += element(0x00000120, msgid) + element(0x00000800, 0x0000 if has_data else 0x0101)
    if status is not None:
        body += element(0x00000900, status)
    return element(0x00000000, len(body)) + body


# ---- matching -------------------------------------------------------------

def value_matches(want, have, key):
    if want == "" or want == "*":
        return True
    if key == "StudyDate" and "-" in want:
        lo, _, hi = want.partition("-")
        return (not lo or have >= lo) and (not hi or have <= hi)
    if "\\" in want:
        return have in want.split("\\")
    if "*" in want or "?" in want:
        rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in want)
        return re.fullmatch(rx, have, re.S) is not None
    return want == have


def attrs(rec):
    return {k: v for k, v in rec.items() if k[:1].isupper()}


def children(rec, level):
    kids = rec.get(CHILDREN[level], [])
    if isinstance(kids, int):
        uid = rec.get("SeriesInstanceUID", "1.2")
        kids = [{"SOPInstanceUID": "%s.%d" % (uid, i + 1), "SOPClassUID": CT_IMAGE,
                 "InstanceNumber": str(i + 1)} for i in range(kids)]
    return kids


def load():
    """The description; the "times" counters restart when it changes."""
    with open(ARGS.db) as f:
        text = f.read()
    with LOCK:
        if STATE.get("text") != text:
            STATE["text"], STATE["fails"] = text, {}
    return json.loads(text)


def walk(db, keys, level):
    """(matches as merged attribute dicts, failure status or None)."""
    out, fail = [], [None]

    def check_fail(rec, path):
        rule = rec.get("fail", {}).get(level)
        if rule is None or fail[0] is not None:
            return
        if isinstance(rule, str):
            rule = {"status": rule}
        with LOCK:
            n = STATE["fails"].get((path, level), 0)
            if rule.get("times") is None or n < int(rule["times"]):
                STATE["fails"][(path, level)] = n + 1
                fail[0] = int(rule["status"], 0)

    def visit(rec, depth, merged, path):
        lvl = LEVELS[depth]
        if not all(value_matches(keys[k], rec[k], k) for k in OWN_KEYS[lvl]
                   if k in rec and k in keys):
            return
        merged = dict(merged, **attrs(rec))
        check_fail(rec, path)
        if lvl == level:
            out.append(merged)
            return
        for i, kid in enumerate(children(rec, lvl)):
            visit(kid, depth + 1, merged, path + (i,))

    check_fail(db, ())
    for i, p in enumerate(db.get("patients", [])):
        visit(p, 0, {}, (i,))
    return out, fail[0]


# ---- one association ------------------------------------------------------

def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise Closed("connection closed")
        buf += chunk
    return buf


def read_pdu(sock):
    kind, _, length = struct.unpack(">BBI", recv_exact(sock, 6))
    return kind, recv_exact(sock, length)


def items(data, off):
    while off + 4 <= len(data):
        kind, length = data[off], struct.unpack(">H", data[off + 2:off + 4])[0]
        yield kind, data[off + 4:off + 4 + length]
        off += 4 + length


def item(kind, body):
    return struct.pack(">BBH", kind, 0, len(body)) + body


class Association:
    def __init__(self, sock, no):
        self.sock, self.no, self.max_pdu, self.contexts = sock, no, 16384, {}
        self.counted = False

    def send_pdu(self, kind, body):
        self.sock.sendall(struct.pack(">BBI", kind, 0, len(body)) + body)

    def send_pdata(self, ctx, flags, data):
        step = max(self.max_pdu - 6, 1) if self.max_pdu else 1 << 20
        for off in range(0, max(len(data), 1), step):
            last = 2 if off + step >= len(data) else 0
            chunk = data[off:off + step]
            self.send_pdu(4, struct.pack(">IBB", len(chunk) + 2, ctx, flags | last) + chunk)

    def associate(self, body):
        called = body[4:20].decode("latin-1").strip()
        calling = body[20:36].decode("latin-1").strip()
        ac = [item(0x10, APP_CONTEXT.encode())]
        for kind, sub in items(body, 68):
            if kind == 0x20:
                ctx, syntax, tss = sub[0], None, []
                for k, v in items(sub, 4):
                    v = v.decode("latin-1").rstrip("\0")
                    if k == 0x30:
                        syntax = v
                    elif k == 0x40:
                        tss.append(v)
                ok = {STUDY_ROOT, VERIFICATION} | (set() if ARGS.no_patient_root else {PATIENT_ROOT})
                result = 3 if syntax not in ok else 0 if IMPLICIT_LE in tss else 4
                if result == 0:
                    self.contexts[ctx] = syntax
                ac.append(item(0x21, bytes([ctx, 0, result, 0]) + item(0x40, IMPLICIT_LE.encode())))
            elif kind == 0x50:
                for k, v in items(sub, 0):
                    if k == 0x51:
                        self.max_pdu = struct.unpack(">I", v)[0]
        if called != ARGS.aet:
            return self.reject(1, 1, 7, "called-aet %s" % called)
        with LOCK:
            full = ARGS.max_assoc and STATE["open"] >= ARGS.max_assoc
            if not full:
                STATE["open"] += 1
                self.counted = True
        if full:
            return self.reject(2, 3, 2, "max-assoc %d" % ARGS.max_assoc)
        log(self.no, "ASSOCIATE", calling or "-", called, STATE["open"])
        ac.append(item(0x50, item(0x51, struct.pack(">I", 16384)) +
                       item(0x52, b"1.2.826.0.1.3680043.9.7433.1") + item(0x55, b"FAKEPACS")))
        hdr = body[0:4] + body[4:20] + body[20:36] + bytes(32)
        self.send_pdu(2, hdr + b"".join(ac))
        return True

    def reject(self, result, source, reason, why):
        log(self.no, "REJECT", why)
        self.send_pdu(3, bytes([0, result, source, reason]))
        return False

    def find(self, ctx, msgid, sop_class, data):
        ds = read_dataset(io.BytesIO(data), True, True)
        keys, shown = {}, []
        for tag in ds.keys():
            raw = ds.get_item(tag).value or b""
            v = raw.decode("latin-1").strip("\0 ") if isinstance(raw, bytes) else str(raw)
            name = keyword_for_tag(tag) or "(%04X,%04X)" % (tag >> 16, tag & 0xFFFF)
            keys[name] = v
            shown.append("%s=%s" % (name, re.sub(r"\s", "_", v)))
        level = keys.get("QueryRetrieveLevel", "")
        model = "PATIENT-ROOT" if sop_class == PATIENT_ROOT else "STUDY-ROOT"
        log(self.no, "FIND", model, level or "-", *shown)
        matches, status = [], 0xA900
        if level in LEVELS and not (level == "PATIENT" and sop_class != PATIENT_ROOT):
            matches, status = walk(load(), keys, level)
            if status is None:
                status = 0
            else:
                matches = []
        for m in matches:
            pairs = [("QueryRetrieveLevel", level)]
            pairs += [(k, m[k]) for k in keys if k in m and k != "QueryRetrieveLevel"]
            self.send_pdata(ctx, 1, command(0x8020, msgid, sop_class, 0xFF00, True))
            self.send_pdata(ctx, 0, encode(pairs))
        self.send_pdata(ctx, 1, command(0x8020, msgid, sop_class, status))
        log(self.no, "FIND-RSP", level or "-", len(matches), "0x%04X" % status)

    def serve(self):
        kind, body = read_pdu(self.sock)
        if kind != 1 or not self.associate(body):
            return
        cmd, data, fields = b"", b"", None
        while True:
            kind, body = read_pdu(self.sock)
            if kind == 5:
                log(self.no, "RELEASE")
                self.send_pdu(6, bytes(4))
                return
            if kind == 7:
                log(self.no, "ABORT")
                return
            if kind != 4:
                raise Closed("PDU type %d in an association" % kind)
            off = 0
            while off + 6 <= len(body):
                length, ctx, flags = struct.unpack_from(">IBB", body, off)
                value, off = body[off + 6:off + 4 + length], off + 4 + length
                if flags & 1:
                    cmd += value
                    if flags & 2:
                        fields, cmd = parse_command(cmd), b""
                        if fields.get(0x0800, 0x0101) == 0x0101:
                            self.dispatch(ctx, fields, b"")
                else:
                    data += value
                    if flags & 2 and fields is not None:
                        self.dispatch(ctx, fields, data)
                        fields, data = None, b""

    def dispatch(self, ctx, fields, data):
        field, msgid = fields.get(0x0100), fields.get(0x0110, 0)
        sop_class = self.contexts.get(ctx, "")
        if field == 0x0030:
            log(self.no, "ECHO")
            self.send_pdata(ctx, 1, command(0x8030, msgid, VERIFICATION, 0))
        elif field == 0x0020:
            self.find(ctx, msgid, sop_class, data)
        elif field != 0x0FFF:
            raise Closed("command 0x%04X" % field)


def parse_command(buf):
    fields, off = {}, 0
    while off + 8 <= len(buf):
        _, elem, length = struct.unpack_from("<HHI", buf, off)
        raw, off = buf[off + 8:off + 8 + length], off + 8 + length
        fields[elem] = struct.unpack("<H", raw)[0] if length == 2 else raw
    return fields


def handle(sock, no):
    a = Association(sock, no)
    try:
        sock.settimeout(120)
        a.serve()
    except (Closed, OSError, ValueError, struct.error) as e:
        print("fakepacs: association %d: %s" % (no, e), file=sys.stderr, flush=True)
    finally:
        if a.counted:
            with LOCK:
                STATE["open"] -= 1
        log(no, "CLOSE")
        sock.close()


def main():
    global ARGS
    p = argparse.ArgumentParser(description="a quirky C-FIND SCP for tests")
    p.add_argument("--db", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--aet", default="FAKEPACS")
    p.add_argument("--max-assoc", type=int, default=0)
    p.add_argument("--log")
    p.add_argument("--ready")
    p.add_argument("--no-patient-root", action="store_true")
    ARGS = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", ARGS.port))
    srv.listen(16)
    if ARGS.ready:
        with open(ARGS.ready + ".tmp", "w") as f:
            f.write("%d\n" % srv.getsockname()[1])
        os.rename(ARGS.ready + ".tmp", ARGS.ready)
    try:
        while True:
            conn, _ = srv.accept()
            with LOCK:
                STATE["next"] += 1
                no = STATE["next"]
            threading.Thread(target=handle, args=(conn, no), daemon=True).start()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
