#!/usr/bin/python3
"""dimseproxy.py - a TCP proxy for the integration tests: it logs every DIMSE
command that passes through it and injects the faults of a real site link.

    dimseproxy.py --route NAME:LISTEN_PORT:TARGET_HOST:TARGET_PORT [--route ...]
                  --log FILE --control FILE [--ready FILE]

Each route listens on 127.0.0.1:LISTEN_PORT and forwards every connection it
accepts to TARGET_HOST:TARGET_PORT, bytes unchanged and as soon as they
arrive; a half-close is passed on, a reset from one peer resets the other.
--ready FILE gets the proxy's pid once every route listens.  SIGTERM/SIGINT:
close everything and exit.  Standard library only, one thread, one selector,
no busy loops: idle, it wakes every 100 ms to read the control file.

Log, appended, one write per line; fault lines have seven fields:
    <unix time> <route> c2s|s2c <COMMAND> <SOP instance UID|-> <status|->
    <unix time> <route> - CONNECT|CLOSE - -
    <unix time> <route> c2s|s2c PARSE-ERROR - -     (once per connection)
    <unix time> <route> - FAULT <kind> - -
    <unix time> - - MODE <the mode, words joined by ':'> -
c2s: sent by the connecting side.  COMMAND: C-ECHO-RQ, C-FIND-RSP, ...,
C-CANCEL-RQ, or the CommandField as 0xNNNN.  UID: Affected, else Requested
SOP Instance UID.  Status: 0xNNNN, upper case.  The line is written before
the bytes are passed on.  Fault kinds: drop, reset, hold (a connection stopped
by blackhole), held-reset (reset as the blackhole ends), refuse (closed by
refuse), unlisten, relisten, refuse-context, unname, and mangle-truncate,
mangle-notdicom, mangle-series (these with the SOP instance UID and the
new SeriesInstanceUID or - in the last two fields).  MODE is logged when
the mode changes and on every SIGHUP (an acknowledgement to wait for).  Parse errors are explained
on stderr.  DIMSE parsing: upper-layer PDUs (type, reserved, 4-byte length),
P-DATA-TF PDVs (4-byte length, context id, control header: bit 0 command,
bit 1 last fragment), command sets in Implicit VR Little Endian.

Control file: its first line, re-read every 100 ms and on SIGHUP.
    pass          forward normally (also when the file is missing or empty)
    drop N        close a connection (both sides) once it has forwarded N
                  bytes, both directions together (a peer with unread data
                  in our socket sees a reset rather than a FIN: Linux close)
    reset P SEED  for each chunk read, with probability P reset both sides
                  (SO_LINGER 0 + close: the peers see ECONNRESET) instead of
                  forwarding it; random.Random(SEED) is made when it is set
    blackhole     the nightly link drop: existing connections stop (nothing
                  more is read or delivered, TCP buffers fill up); new ones
                  are accepted but not connected onwards.  Leaving blackhole
                  resets every held connection
    refuse        close the listening sockets (ECONNREFUSED) and every
                  connection; any other mode listens again on the same ports
    unname        a PACS that does not say which C-MOVE its C-STOREs are
                  for: on connections accepted in this mode, each command
                  set the connecting side sends alone in a P-DATA-TF loses
                  its Move Originator AE Title and Message ID (0000,1030),
                  (0000,1031), its group length and PDU made to fit
                  (logged once per connection: FAULT unname); otherwise
                  as pass
    slow RATE     a slow link: each connection carries at most RATE bytes
                  a second each way, in 100 ms slices; otherwise as pass
    refuse-context UID...
                  a PACS that will not take those abstract syntaxes: in the
                  A-ASSOCIATE-AC of each new association, the presentation
                  contexts the RQ proposed for them are marked refused
                  (result 3); otherwise as pass
    mangle KIND SOPUID [KIND SOPUID]...
                  a DICOMweb server that sends a bad instance: in each HTTP
                  answer to a GET that is multipart/related (WADO-RS, a
                  series or one instance), the part whose DICOM data holds
                  SOPUID is altered, KIND one of
                    truncate  the part's body cut to its first half
                    notdicom  the body replaced by as many bytes of text
                    series    its SeriesInstanceUID (0020,000E) rewritten
                              to another UID of the same length (the last
                              digit plus one, mod 10): it parses, but
                              belongs to another series
                  Only the body bytes change: boundaries, part headers and
                  the answer's head stay, but for a part's and the answer's
                  Content-Length, set to the new length; a chunked answer is
                  de-chunked and sent with a Content-Length.  Such an answer
                  is held whole and sent once complete (at EOF when the
                  server ends it by closing).  Otherwise as pass

A connection whose client speaks first with an HTTP method is logged as
HTTP: one line per request, `<time> <route> c2s <METHOD> <target> -`;
its answers (HTTP/1.1: Content-Length, chunked, or ended by close) are
followed so that mangle can pick them out.  Each part mangle alters is
logged `<time> <route> - FAULT mangle-<KIND> <SOPUID> <new series UID|->`.
A DIMSE request about no SOP instance (C-FIND-RQ, C-GET-RQ, C-MOVE-RQ of a
series) has its Affected SOP Class UID in the UID field: the information
model in use.
"""

import argparse
import errno
import os
import random
import selectors
import signal
import socket
import struct
import sys
import time

CHUNK = 256 * 1024      # one recv
HIGH_WATER = 1 << 20    # stop reading a side while this much waits for the other
POLL = 0.1              # control file period, seconds
MAX_COMMAND = 1 << 20   # a larger command set is a parse error
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
OTHER, DIRECTION = {"c": "s", "s": "c"}, {"c": "c2s", "s": "s2c"}
COMMANDS = {
    0x0001: "C-STORE-RQ", 0x8001: "C-STORE-RSP", 0x0010: "C-GET-RQ", 0x8010: "C-GET-RSP",
    0x0020: "C-FIND-RQ", 0x8020: "C-FIND-RSP", 0x0021: "C-MOVE-RQ", 0x8021: "C-MOVE-RSP",
    0x0030: "C-ECHO-RQ", 0x8030: "C-ECHO-RSP", 0x0FFF: "C-CANCEL-RQ",
}


def warn(msg):
    print("dimseproxy: %s" % msg, file=sys.stderr, flush=True)


# ---- DICOM upper layer --------------------------------------------------

class ParseError(ValueError):
    """The stream is not (or no longer) DICOM upper layer as we know it."""


def parse_command(buf):
    """A command set (Implicit VR Little Endian) -> (name, uid, status)."""
    fields, off = {}, 0
    while off < len(buf):
        if len(buf) - off < 8:
            raise ParseError("truncated element at offset %d of a command set" % off)
        group, elem, length = struct.unpack_from("<HHI", buf, off)
        off += 8
        if group != 0 or length > len(buf) - off:
            raise ParseError("element (%04x,%04x) of %d bytes in a command set" % (group, elem, length))
        fields[elem], off = buf[off:off + length], off + length
    if len(fields.get(0x0100, b"")) != 2:
        raise ParseError("command set without CommandField")
    field = struct.unpack("<H", fields[0x0100])[0]
    # A request about no instance (C-FIND-RQ, C-GET-RQ...) names its class:
    # the information model the association chose.
    raw = fields.get(0x1000) or fields.get(0x1001) or b""
    if not raw and not field & 0x8000:
        raw = fields.get(0x0002, b"")
    raw = raw.decode("latin-1").rstrip("\0 ")
    uid = "".join(c if c.isprintable() and not c.isspace() else "?" for c in raw) or "-"
    status = "-"
    if len(fields.get(0x0900, b"")) == 2:
        status = "0x%04X" % struct.unpack("<H", fields[0x0900])[0]
    return COMMANDS.get(field, "0x%04X" % field), uid, status


class DimseParser:
    """Follows one direction of an upper-layer stream, holding no more than a
    command set; calls emit(name, uid, status) for each complete command.
    States: "pdu"/"pdv" collect a 6-byte PDU/PDV header, "skip" passes over a
    PDU that is not P-DATA-TF, "value" is inside a PDV."""

    def __init__(self, emit):
        self.emit, self.state, self.head = emit, "pdu", b""
        self.pdu_left = self.pdv_left = self.flags = 0
        self.command = bytearray()

    def feed(self, data):
        i, n = 0, len(data)
        while i < n:
            if self.state in ("pdu", "pdv"):
                take = min(6 - len(self.head), n - i)
                self.head += data[i:i + take]
                i += take
                if self.state == "pdv":
                    self.pdu_left -= take
                if len(self.head) == 6:
                    head, self.head = self.head, b""
                    (self.pdu_header if self.state == "pdu" else self.pdv_header)(head)
            elif self.state == "skip":
                take = min(self.pdu_left, n - i)
                i, self.pdu_left = i + take, self.pdu_left - take
                if self.pdu_left == 0:
                    self.state = "pdu"
            else:
                take = min(self.pdv_left, n - i)
                if self.flags & 1:
                    self.command += data[i:i + take]
                    if len(self.command) > MAX_COMMAND:
                        raise ParseError("command set over %d bytes" % MAX_COMMAND)
                i, self.pdv_left, self.pdu_left = i + take, self.pdv_left - take, self.pdu_left - take
                if self.pdv_left == 0:
                    self.pdv_end()

    def pdu_header(self, head):
        kind, length = head[0], struct.unpack(">I", head[2:6])[0]
        if not 1 <= kind <= 7:
            raise ParseError("PDU type 0x%02x" % kind)
        if kind == 4 and length < 6:
            raise ParseError("P-DATA-TF of %d bytes" % length)
        if length:
            self.state, self.pdu_left = "pdv" if kind == 4 else "skip", length

    def pdv_header(self, head):
        length = struct.unpack(">I", head[0:4])[0]
        if length < 2 or length - 2 > self.pdu_left:
            raise ParseError("PDV of %d bytes, %d left in its PDU" % (length, self.pdu_left))
        self.flags, self.pdv_left, self.state = head[5], length - 2, "value"
        if self.pdv_left == 0:
            self.pdv_end()

    def pdv_end(self):
        if (self.flags & 3) == 3:           # the last fragment of a command
            command, self.command = bytes(self.command), bytearray()
            self.emit(*parse_command(command))
        if 0 < self.pdu_left < 6:
            raise ParseError("%d stray bytes at the end of a P-DATA-TF" % self.pdu_left)
        self.state = "pdv" if self.pdu_left else "pdu"


class HttpParser:
    """Follows the client side of an HTTP/1.1 stream: calls emit(method,
    target, "-") for each request head, and request((method, target)) when
    given.  Bodies with a Content-Length are passed over; chunked request
    bodies are not expected (a parse error)."""

    def __init__(self, emit, request=None):
        self.emit, self.head, self.body_left = emit, bytearray(), 0
        self.on_request = request

    def feed(self, data):
        i = 0
        while i < len(data):
            if self.body_left:
                take = min(self.body_left, len(data) - i)
                i, self.body_left = i + take, self.body_left - take
                continue
            keep = min(3, len(self.head))
            end = (bytes(self.head[len(self.head) - keep:]) + data[i:]).find(b"\r\n\r\n")
            if end < 0:
                self.head += data[i:]
                if len(self.head) > MAX_COMMAND:
                    raise ParseError("HTTP head over %d bytes" % MAX_COMMAND)
                return
            cut = i + end + 4 - keep
            self.head += data[i:cut]
            i = cut
            self.request(bytes(self.head))
            self.head = bytearray()

    def request(self, head):
        lines = head.decode("latin-1").split("\r\n")
        words = lines[0].split()
        if len(words) != 3 or not words[2].startswith("HTTP/"):
            raise ParseError("not an HTTP request line: %r" % lines[0][:80])
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                self.body_left = int(value.strip())
            elif name.strip().lower() == "transfer-encoding":
                raise ParseError("chunked request body")
        self.emit(words[0], words[1], "-")
        if self.on_request:
            self.on_request((words[0], words[1]))


# ---- mangle: bad instances in WADO-RS answers ---------------------------

MANGLE = ("truncate", "notdicom", "series")
UID_CHARS = b"0123456789."
NOT_DICOM = b"This is not DICOM: dimseproxy replaced the instance with text.\n"


def find_uid(data, uid, start=0):
    """Where uid occurs in data as a whole UID (not part of a longer one)."""
    while True:
        i = data.find(uid, start)
        if i < 0:
            return -1
        end = i + len(uid)
        if (i == 0 or data[i - 1] not in UID_CHARS) and (end == len(data) or data[end] not in UID_CHARS):
            return i
        start = i + 1


def series_uid(data):
    """The value of the first (0020,000E) of a DICOM body, little endian,
    explicit or implicit VR, or None."""
    start = 0
    while True:
        i = data.find(b"\x20\x00\x0e\x00", start)
        if i < 0 or i + 8 > len(data):
            return None
        if data[i + 4:i + 6] == b"UI":
            n = struct.unpack_from("<H", data, i + 6)[0]
        else:
            n = struct.unpack_from("<I", data, i + 4)[0]
        value = bytes(data[i + 8:i + 8 + n]).rstrip(b"\0 ")
        if 0 < n <= 64 and value and all(c in UID_CHARS for c in value):
            return value
        start = i + 1


def other_uid(uid):
    """Another UID of the same length: the last digit plus one, mod 10."""
    return uid[:-1] + b"%d" % ((uid[-1] - 0x30 + 1) % 10)


def mangle_part(kind, body):
    """(new body, new series UID or None) for one part's body."""
    if kind == "truncate":
        return body[:len(body) // 2], None
    if kind == "notdicom":
        return (NOT_DICOM * (len(body) // len(NOT_DICOM) + 1))[:len(body)], None
    old = series_uid(body)
    if old is None:
        raise ParseError("mangle series: no SeriesInstanceUID in the part")
    new, out, start = other_uid(old), bytearray(), 0
    while (i := find_uid(body, old, start)) >= 0:
        out += body[start:i] + new
        start = i + len(old)
    return bytes(out + body[start:]), new


def set_length(head, n):
    """A head (lines joined by CRLF, without the blank line) with its
    Content-Length set to n, Transfer-Encoding dropped; the other lines as
    they were."""
    lines = [line for line in head.split(b"\r\n")
             if line.split(b":")[0].strip().lower() not in (b"content-length", b"transfer-encoding")]
    return b"\r\n".join(lines[:1] + [b"Content-Length: %d" % n] + lines[1:])


def mangle_multipart(body, boundary, targets, log):
    """(body, parts altered): body, a multipart/related answer, with the
    parts of targets (SOP UID -> kind) altered; log(kind, sop, new series
    or "-") for each."""
    delim, marks, start, n = b"--" + boundary, [], 0, 0
    while (i := body.find(delim, start)) >= 0:
        if i == 0 or body[i - 2:i] == b"\r\n":
            marks.append(i)
        start = i + len(delim)
    out, last = bytearray(), 0
    for a, b in zip(marks, marks[1:]):
        begin = body.find(b"\n", a) + 1                # after the delimiter line
        end = b - 2                                     # the CRLF before the next one
        split = body.find(b"\r\n\r\n", begin, end)
        if begin <= 0 or split < 0:
            continue
        part = body[split + 4:end]
        for sop, kind in targets.items():
            if find_uid(part, sop) >= 0:
                new, series = mangle_part(kind, part)
                head = body[begin:split]
                if b"content-length" in head.lower():
                    head = set_length(head, len(new))
                out += body[last:begin] + head + b"\r\n\r\n" + new
                last, n = end, n + 1
                log("mangle-" + kind, sop.decode(), series.decode() if series else "-")
                break
    return bytes(out + body[last:]), n


class HttpAnswers:
    """Follows the server side of an HTTP/1.1 stream, answer by answer,
    and in mangle mode holds each multipart/related answer to a GET until
    it is whole, to alter it.  feed(data) and finish() (at the server's
    EOF) give back what to send on.  requests: (method, target) of the
    requests not answered yet, in order, filled by the HttpParser."""

    def __init__(self, proxy, log):
        self.p, self.log = proxy, log
        self.requests = []
        self.state, self.head, self.forward = "head", bytearray(), True
        self.left = 0           # body bytes (or chunk bytes) still to come
        self.framing = None     # "length", "chunked", "close"
        self.held = None        # the answer held whole: raw bytes
        self.body = bytearray() # ... and its body, de-chunked
        self.answer_head = None # ... and its head
        self.boundary = None    # ... and its multipart boundary
        self.line = bytearray() # a chunk-size or trailer line

    def feed(self, data):
        out, i, n = bytearray(), 0, len(data)
        while i < n:
            if self.state == "head":
                if not self.head:
                    self.forward = self.p.mode[0] != "mangle"
                keep = min(3, len(self.head))
                end = (bytes(self.head[len(self.head) - keep:]) + data[i:]).find(b"\r\n\r\n")
                take = n - i if end < 0 else end + 4 - keep
                self.head += data[i:i + take]
                if self.forward:
                    out += data[i:i + take]
                i += take
                if len(self.head) > MAX_COMMAND:
                    raise ParseError("HTTP answer head over %d bytes" % MAX_COMMAND)
                if end >= 0:
                    out += self.answer()
                continue
            if self.state == "close":
                take = n - i
            elif self.state in ("length", "data", "crlf"):
                take = min(self.left, n - i)
            else:                   # a chunk-size or trailer line
                nl = data.find(b"\n", i)
                take = n - i if nl < 0 else nl + 1 - i
            raw = data[i:i + take]
            i += take
            if self.held is None:
                out += raw
            else:
                self.held += raw
                if self.state in ("close", "length", "data"):
                    self.body += raw
            if self.state == "close":
                continue
            if self.state in ("length", "data", "crlf"):
                self.left -= take
                if self.left == 0 and self.state == "length":
                    out += self.answered()
                elif self.left == 0:
                    self.state, self.left = ("crlf", 2) if self.state == "data" else ("size", 0)
                continue
            self.line += raw
            if len(self.line) > 4096:
                raise ParseError("chunk line over 4096 bytes")
            if not self.line.endswith(b"\n"):
                continue
            line, self.line = bytes(self.line).strip(), bytearray()
            if self.state == "size":
                size = int(line.split(b";")[0], 16)
                self.state, self.left = ("data", size) if size else ("trailer", 0)
            elif not line:          # the blank line after the trailers
                out += self.answered()
        return bytes(out)

    def answer(self):
        """A whole head has come: how its body is framed, whether to hold
        it; what to send on now."""
        head, self.head = bytes(self.head), bytearray()
        lines = head.decode("latin-1").split("\r\n")
        words = lines[0].split(None, 2)
        if len(words) < 2 or not words[0].startswith("HTTP/1.") or not words[1].isdigit():
            raise ParseError("not an HTTP status line: %r" % lines[0][:80])
        status, fields = int(words[1]), {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if 100 <= status < 200:     # an interim answer: the real one follows
            return b"" if self.forward else head
        method, target = self.requests.pop(0) if self.requests else ("-", "-")
        if method == "HEAD" or status in (204, 304):
            self.framing = None
        elif "chunked" in fields.get("transfer-encoding", "").lower():
            self.framing = "chunked"
        elif "content-length" in fields:
            self.framing, self.left = "length", int(fields["content-length"])
        else:
            self.framing = "close"
        if self.framing == "length" and self.left == 0:
            self.framing = None
        self.state = {"chunked": "size", None: "head"}.get(self.framing, self.framing)
        ctype, self.boundary = fields.get("content-type", ""), None
        if self.p.mode[0] == "mangle" and not self.forward and method == "GET" and status == 200 \
                and ctype.lower().startswith("multipart/related") and self.framing:
            for param in ctype.split(";")[1:]:
                key, _, value = param.strip().partition("=")
                if key.lower() == "boundary":
                    self.boundary = value.strip('"').encode("latin-1")
        if self.boundary:
            self.held, self.body, self.answer_head = bytearray(head), bytearray(), head
            return b""
        return b"" if self.forward else head

    def answered(self):
        """The answer's body is complete: what to send on."""
        framing, self.state, self.framing = self.framing, "head", None
        held, body, self.held, self.body = self.held, bytes(self.body), None, bytearray()
        if held is None:
            return b""
        mode = self.p.mode
        if mode[0] != "mangle":     # left mangle meanwhile: as it came
            return bytes(held)
        targets = {sop.encode("ascii"): kind for kind, sop in zip(mode[1::2], mode[2::2])}
        body, n = mangle_multipart(body, self.boundary, targets, self.log)
        if n == 0:
            return bytes(held)
        head = self.answer_head[:-4]
        if framing != "close":
            head = set_length(head, len(body))
        return head + b"\r\n\r\n" + body

    def finish(self):
        """The server closed: an answer held to its end goes on altered, one
        cut short as it came."""
        if self.held is None:
            return b""
        if self.state == "close":
            return self.answered()
        held, self.held = bytes(self.held), None
        return held

    def raw(self):
        """What is held, as it came (tracking stops after a parse error)."""
        held, self.held = bytes(self.held or b""), None
        return held + (b"" if self.forward else bytes(self.head))


def refuse_contexts(rq, ac, uids):
    """A-ASSOCIATE-AC ac, with every presentation context whose abstract
    syntax in the A-ASSOCIATE-RQ rq is one of uids marked refused (result 3,
    abstract syntax not supported): the PACS that will not take them.
    Same length, so it can go on as it is."""
    def items(pdu):
        off = 6 + 68                        # PDU header, fixed fields
        while off + 4 <= len(pdu):
            kind, length = pdu[off], struct.unpack_from(">H", pdu, off + 2)[0]
            yield kind, off, length
            off += 4 + length

    syntax = {}
    for kind, off, length in items(rq):
        if kind == 0x20:                    # presentation context (RQ)
            sub = off + 8
            while sub + 4 <= off + 4 + length:
                skind, slen = rq[sub], struct.unpack_from(">H", rq, sub + 2)[0]
                if skind == 0x30:           # abstract syntax
                    syntax[rq[off + 4]] = rq[sub + 4:sub + 4 + slen].decode("latin-1").rstrip("\0 ")
                sub += 4 + slen
    out = bytearray(ac)
    for kind, off, length in items(ac):
        if kind == 0x21 and syntax.get(ac[off + 4]) in uids and out[off + 6] == 0:
            out[off + 6] = 3
    return bytes(out)


def unname_command(pdu):
    """P-DATA-TF pdu, whole, with its Move Originator AE Title and Message
    ID taken out when it is one PDV holding a whole command set; None when
    there was nothing to take out."""
    if len(pdu) < 12 or pdu[0] != 4 or 10 + struct.unpack_from(">I", pdu, 6)[0] != len(pdu) \
            or pdu[11] & 3 != 3:
        return None
    cmd, off, kept, dropped = pdu[12:], 0, [], 0
    while off + 8 <= len(cmd):
        group, elem, length = struct.unpack_from("<HHI", cmd, off)
        if group != 0 or off + 8 + length > len(cmd):
            return None
        if elem in (0x1030, 0x1031):
            dropped += 1
        elif elem != 0x0000:
            kept.append(cmd[off:off + 8 + length])
        off += 8 + length
    if not dropped or off != len(cmd):
        return None
    body = b"".join(kept)
    pdv = pdu[10:12] + struct.pack("<HHII", 0, 0, 4, len(body)) + body
    return b"\4\0" + struct.pack(">II", 4 + len(pdv), len(pdv)) + pdv


# ---- one proxied connection ---------------------------------------------

class Conn:
    """Side "c" is the connecting peer, side "s" the target.  out[x]: bytes
    waiting to be written to x; eof[x]: x sent its FIN; shut[x]: we sent x
    ours; events[x]: what x's socket is registered for."""

    def __init__(self, proxy, route, sock):
        self.p, self.route = proxy, route
        self.sock = {"c": sock, "s": None}
        self.out = {"c": bytearray(), "s": bytearray()}
        self.eof, self.shut = {"c": False, "s": False}, {"c": False, "s": False}
        self.events = {"c": 0, "s": 0}
        self.parser = {x: DimseParser(self.emitter(x)) for x in "cs"}
        self.parsing, self.connecting, self.held, self.closed = True, False, False, False
        self.count = 0                      # bytes forwarded, both directions
        self.first = True                   # nothing read from the client yet
        self.assoc = {"c": bytearray(), "s": bytearray()}   # refuse-context: PDUs held
        self.rq = None                      # refuse-context: the A-ASSOCIATE-RQ
        self.answers = None                 # HTTP: the server's answers (mangle)
        # unname: the connecting side's PDUs, held until whole
        self.pdus = bytearray() if proxy.mode[0] == "unname" else None
        self.unnamed = False
        self.allow = {"c": 0, "s": 0}       # slow: bytes a side may still send this slice

    def emitter(self, side):
        return lambda *msg: self.p.log(self.route.name, DIRECTION[side], *msg)

    def fault(self, kind, uid="-", detail="-"):
        self.p.log(self.route.name, "-", "FAULT", kind, uid, detail)

    def follow(self, fn, *data):
        """HTTP answers through self.answers; after a parse error (or a
        request the client side could not parse) no more following, what
        was held goes on as it came."""
        if self.answers and self.parsing:
            try:
                return fn(*data)
            except Exception as e:          # never let parsing break forwarding
                warn("%s s2c: HTTP answer parse error, no more following of this connection: %s"
                     % (self.route.name, e))
        held, self.answers = self.answers.raw() if self.answers else b"", None
        return held + b"".join(data)

    def connect(self):
        r = self.route
        s = self.sock["s"] = socket.socket(r.family, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = s.connect_ex(r.addr)
        self.connecting = err in (errno.EINPROGRESS, errno.EAGAIN)
        if err and not self.connecting:
            self.connect_failed(err)

    def connected(self):
        err = self.sock["s"].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            return self.connect_failed(err)
        self.connecting = False
        self.flush("s")

    def connect_failed(self, err):
        warn("%s: connect to %s: %s" % (self.route.name, self.route.addr, os.strerror(err)))
        self.close(reset=True)

    def hold(self):
        if not self.held:
            self.held = True
            self.fault("hold")
            self.update()

    def readable(self, side):
        other, n = OTHER[side], CHUNK
        if self.p.mode[0] == "slow":
            n = min(n, self.allow[side])
            if n <= 0:
                return
        try:
            data = self.sock[side].recv(n)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self.close(reset=True)   # one peer's reset resets the other
        if not data:
            self.eof[side] = True
            if side == "s" and self.answers:
                self.out[other] += self.follow(self.answers.finish)
            return self.flush(other)
        mode = self.p.mode
        self.allow[side] -= len(data)
        if mode[0] == "reset" and self.p.rng.random() < mode[1]:
            self.fault("reset")
            return self.close(reset=True)
        drop = mode[0] == "drop" and self.count + len(data) >= mode[1]
        if drop:
            data = data[:max(0, mode[1] - self.count)]
        self.count += len(data)
        if side == "c" and self.first:
            self.first = False
            if data[:8].split(b" ")[0] in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS"):
                self.answers = HttpAnswers(self.p, lambda *f: self.fault(*f))
                self.parser = {"c": HttpParser(self.emitter("c"), self.answers.requests.append),
                               "s": None}
        if mode[0] == "refuse-context" and self.parser["s"] is not None:
            data = self.associate(side, data, mode[1:])
            if data is None:
                return
        if side == "c" and self.pdus is not None and self.parser["s"] is not None:
            data = self.unname(data)
        self.parse(side, data)              # log first: the peers react to what we send
        if side == "s" and self.answers:
            data = self.follow(self.answers.feed, data)
        self.out[other] += data
        self.flush(other)
        if drop and not self.closed:
            self.fault("drop")
            self.close()

    def associate(self, side, data, uids):
        """Hold each side's first PDU until it is whole; rewrite the
        A-ASSOCIATE-AC.  None while that PDU is incomplete."""
        buf = self.assoc[side]
        if buf is None:
            return data
        buf += data
        if len(buf) < 6 or len(buf) < 6 + struct.unpack_from(">I", buf, 2)[0]:
            return None
        pdu, self.assoc[side] = bytes(buf), None
        if side == "c" and pdu[0] == 1:
            self.rq = pdu
        elif side == "s" and pdu[0] == 2 and self.rq:
            pdu = refuse_contexts(self.rq, pdu, uids)
            self.fault("refuse-context")
        return pdu

    def unname(self, data):
        """The whole PDUs in what was held plus data, command sets
        without their Move Originator; the rest stays held."""
        buf, out = self.pdus, bytearray()
        buf += data
        while len(buf) >= 6 and len(buf) >= 6 + struct.unpack_from(">I", buf, 2)[0]:
            n = 6 + struct.unpack_from(">I", buf, 2)[0]
            pdu = bytes(buf[:n])
            del buf[:n]
            new = unname_command(pdu)
            if new is not None and not self.unnamed:
                self.unnamed = True
                self.fault("unname")
            out += new if new is not None else pdu
        return bytes(out)

    def parse(self, side, data):
        if self.parser[side] is None:
            return
        if self.parsing:
            try:
                self.parser[side].feed(data)
            except Exception as e:          # never let parsing break forwarding
                self.parsing = False
                self.p.log(self.route.name, DIRECTION[side], "PARSE-ERROR", "-", "-")
                warn("%s %s: parse error, no more parsing of this connection: %s"
                     % (self.route.name, DIRECTION[side], e))

    def flush(self, side):
        """Write what waits for side; pass a half-close on; close when both are."""
        sock, buf = self.sock[side], self.out[side]
        if self.closed or self.held or sock is None or (side == "s" and self.connecting):
            return
        while buf:
            try:
                del buf[:sock.send(buf)]
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return self.close(reset=True)
        if self.eof[OTHER[side]] and not self.shut[side]:
            self.shut[side] = True
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        if self.shut["c"] and self.shut["s"]:
            self.close()

    def update(self):
        """Register each socket for what it can do now (nothing when held)."""
        for side, other in (("c", "s"), ("s", "c")):
            sock, ev = self.sock[side], 0
            if self.closed or sock is None or self.held:
                pass
            elif side == "s" and self.connecting:
                ev = WRITE
            else:
                slowed = self.p.mode[0] == "slow" and self.allow[side] <= 0
                if not self.eof[side] and len(self.out[other]) < HIGH_WATER and not slowed:
                    ev |= READ
                if self.out[side]:
                    ev |= WRITE
            if ev != self.events[side]:
                if not self.events[side]:
                    self.p.sel.register(sock, ev, (self, side))
                elif not ev:
                    self.p.sel.unregister(sock)
                else:
                    self.p.sel.modify(sock, ev, (self, side))
                self.events[side] = ev

    def close(self, reset=False):
        if self.closed:
            return
        self.closed = True
        self.update()                       # unregisters everything
        for sock in filter(None, self.sock.values()):
            try:
                if reset:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            sock.close()
        self.p.conns.discard(self)
        self.p.log(self.route.name, "-", "CLOSE", "-", "-")


# ---- the proxy ----------------------------------------------------------

class Route:
    def __init__(self, spec):
        try:
            name, port, rest = spec.split(":", 2)
            host, tport = rest.rsplit(":", 1)
            info = socket.getaddrinfo(host.strip("[]"), int(tport), type=socket.SOCK_STREAM)
            self.name, self.port = name, int(port)
        except (ValueError, OSError) as e:
            raise argparse.ArgumentTypeError("bad route %r: %s" % (spec, e))
        if not name or any(c.isspace() for c in name):
            raise argparse.ArgumentTypeError("bad route name %r" % name)
        self.family, self.addr, self.lsock = info[0][0], info[0][4], None


def parse_mode(line):
    w = line.split()
    if not w or w == ["pass"]:
        return ("pass",)
    if w[0] == "drop" and len(w) == 2 and int(w[1]) >= 0:
        return ("drop", int(w[1]))
    if w[0] == "slow" and len(w) == 2 and int(w[1]) > 0:
        return ("slow", int(w[1]))
    if w[0] == "reset" and len(w) == 3 and 0 <= float(w[1]) <= 1:
        return ("reset", float(w[1]), w[2])
    if w in (["blackhole"], ["refuse"], ["unname"]):
        return (w[0],)
    if w[0] == "refuse-context" and len(w) >= 2:
        return tuple(w)
    if w[0] == "mangle" and len(w) >= 3 and len(w) % 2 == 1 and \
            all(k in MANGLE for k in w[1::2]):
        return tuple(w)
    raise ValueError(line)


class Proxy:
    def __init__(self, routes, log, control):
        self.routes, self.control = routes, control
        self.logfd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.sel, self.conns = selectors.DefaultSelector(), set()
        self.mode, self.rng, self.text = ("pass",), random.Random(0), None
        self.stop = self.hup = False
        self.wake_r, self.wake_w = socket.socketpair()    # signal.set_wakeup_fd
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.sel.register(self.wake_r, READ, None)

    def log(self, *fields):
        line = "%.6f %s\n" % (time.time(), " ".join(fields))
        os.write(self.logfd, line.encode("ascii", "replace"))

    def listen(self, r):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", r.port))
            s.listen(128)
        except OSError:
            s.close()
            raise
        s.setblocking(False)
        r.lsock = s
        self.sel.register(s, READ, r)

    def ensure_listening(self):
        for r in self.routes:
            if r.lsock is None and self.mode[0] != "refuse":
                try:
                    self.listen(r)
                    self.log(r.name, "-", "FAULT", "relisten", "-", "-")
                except OSError as e:        # tried again at the next poll
                    warn("%s: listen on 127.0.0.1:%d: %s" % (r.name, r.port, e))

    def accept(self, r):
        while r.lsock:
            try:
                sock = r.lsock.accept()[0]
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:            # EMFILE and the like: do not spin
                warn("%s: accept: %s" % (r.name, e))
                return time.sleep(POLL)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c = Conn(self, r, sock)
            self.conns.add(c)
            self.log(r.name, "-", "CONNECT", "-", "-")
            if self.mode[0] == "blackhole":
                c.hold()
            elif self.mode[0] == "drop" and self.mode[1] == 0:
                c.fault("drop")
                c.close()
            else:
                c.connect()
            c.update()

    def poll_control(self, ack):
        try:
            with open(self.control, encoding="utf-8", errors="replace") as f:
                text = f.readline()
        except FileNotFoundError:
            text = ""
        except OSError as e:
            return warn("control file: %s" % e)
        if text == self.text and not ack:
            return
        self.text = text
        try:
            mode = parse_mode(text)
        except ValueError:
            warn("control file: not a mode, keeping %s: %r" % (self.mode[0], text))
            return self.log("-", "-", "MODE", "invalid", "-")
        if mode != self.mode:
            self.apply(mode)
        self.log("-", "-", "MODE", ":".join(map(str, mode)), "-")

    def apply(self, mode):
        old, self.mode = self.mode, mode
        for c in list(self.conns):
            if old[0] == "blackhole":
                c.fault("held-reset")
                c.close(reset=True)
            elif mode[0] == "blackhole":
                c.hold()
            elif mode[0] == "refuse" or (mode[0] == "drop" and c.count >= mode[1]):
                c.fault(mode[0])
                c.close()
            else:
                c.update()                  # reading again after slow
        if mode[0] == "reset":
            seed = mode[2]
            self.rng = random.Random(int(seed) if seed.lstrip("-").isdigit() else seed)
        if mode[0] == "refuse":
            for r in self.routes:
                if r.lsock:
                    self.sel.unregister(r.lsock)
                    r.lsock.close()
                    r.lsock = None
                    self.log(r.name, "-", "FAULT", "unlisten", "-", "-")
        self.ensure_listening()

    def run(self):
        next_poll = 0.0
        while not self.stop:
            now = time.monotonic()
            if self.hup or now >= next_poll:
                ack, self.hup = self.hup, False
                self.poll_control(ack)
                self.ensure_listening()
                next_poll = now + POLL
                if self.mode[0] == "slow":
                    for c in list(self.conns):
                        c.allow = {x: int(self.mode[1] * POLL) for x in "cs"}
                        c.update()
            for key, mask in self.sel.select(max(0.0, next_poll - time.monotonic())):
                if key.data is None:
                    try:
                        self.wake_r.recv(4096)
                    except OSError:
                        pass
                elif isinstance(key.data, Route):
                    self.accept(key.data)
                else:
                    c, side = key.data
                    if c.closed:            # closed by an earlier event of this round
                        continue
                    if side == "s" and c.connecting:
                        c.connected()
                    else:
                        if mask & READ:
                            c.readable(side)
                        if mask & WRITE:
                            c.flush(side)
                    c.update()
        for c in list(self.conns):
            c.close()


def main():
    ap = argparse.ArgumentParser(description="DIMSE-logging, fault-injecting TCP proxy for tests")
    ap.add_argument("--route", type=Route, action="append", required=True,
                    metavar="NAME:LISTEN_PORT:TARGET_HOST:TARGET_PORT")
    ap.add_argument("--log", required=True)
    ap.add_argument("--control", required=True)
    ap.add_argument("--ready")
    args = ap.parse_args()
    proxy = Proxy(args.route, args.log, args.control)
    signal.set_wakeup_fd(proxy.wake_w.fileno(), warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, lambda *_: setattr(proxy, "stop", True))
    signal.signal(signal.SIGINT, lambda *_: setattr(proxy, "stop", True))
    signal.signal(signal.SIGHUP, lambda *_: setattr(proxy, "hup", True))
    for r in args.route:
        try:
            proxy.listen(r)
        except OSError as e:
            sys.exit("dimseproxy: %s: listen on 127.0.0.1:%d: %s" % (r.name, r.port, e))
    proxy.poll_control(False)
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(args.ready + ".tmp", args.ready)
    proxy.run()


if __name__ == "__main__":
    main()
