#!/usr/bin/python3
"""hostile_http.py PORT - a DICOMweb server that misbehaves, for
t-http-hostile.  The first path segment picks how; the rest is the
DICOMweb root (http://127.0.0.1:PORT/MODE/dicom-web):

  trickle  QIDO answers "[" then 2 bytes a second, never ending
  huge     a QIDO answer of 60 MB: [{},{},...]
  hugecl   the same without a Content-Length: it ends when the connection does
  big      a QIDO answer of 30 MB, a page of objects full of empty objects,
           of a patient no one selects (without a Content-Length)
  endless  every QIDO page is full (100 new studies, of a patient no one
           selects): the paging never ends
  wado     one patient TH-01 with one series of one instance, whose WADO-RS
           part never ends (zeros, as fast as they go)
  esc      the same, but the part's Content-Type holds an ESC sequence and
           a CR
  escct    the same, but the answer's own Content-Type does (curl ends
           the header at the CR)

Every request is logged to stdout as "MODE PATH?QUERY".
"""
import json
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STUDY, SERIES, SOP = "1.2.826.0.1.9", "1.2.826.0.1.9.1", "1.2.826.0.1.9.1.1"
BOUND = "hostileboundary"
MULTIPART = 'multipart/related; type="application/dicom"; boundary=' + BOUND


def attr(vr, value):
    return {"vr": vr, "Value": [value]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def head(self, ctype, length=None, body=b""):
        """Status line and headers, raw, so any byte can go in them; and
        body in the same write (two small writes cost a delayed ACK)."""
        h = "HTTP/1.1 200 OK\r\nContent-Type: " + ctype + "\r\n"
        if length is None:
            h += "Connection: close\r\n"
            self.close_connection = True
        else:
            h += "Content-Length: %d\r\n" % length
        self.wfile.write(h.encode("latin-1") + b"\r\n" + body)

    def json(self, obj):
        body = json.dumps(obj).encode()
        self.head("application/dicom+json", len(body), body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.split("/")
        mode, rest = parts[1], "/".join(parts[3:])
        q = urllib.parse.parse_qs(url.query)
        print(mode, rest + "?" + url.query, flush=True)
        try:
            self.answer(mode, rest, q)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def answer(self, mode, rest, q):
        if mode == "trickle":
            self.head("application/dicom+json")
            self.wfile.write(b"[")
            while True:
                self.wfile.write(b"  ")
                self.wfile.flush()
                time.sleep(1)
        elif mode in ("huge", "hugecl"):
            n = 60 * (1 << 20) // 3
            self.head("application/dicom+json", 3 * n + 1 if mode == "huge" else None)
            self.wfile.write(b"[")
            chunk = b"{}," * (1 << 16)
            for _ in range(n // (1 << 16)):
                self.wfile.write(chunk)
            self.wfile.write(b"{}," * (n % (1 << 16) - 1) + b"{}]")
        elif mode == "big":
            obj = ('{"00100020":{"vr":"LO","Value":["ZZ-NOBODY"]},' +
                   ",".join('"x%02d":{}' % i for i in range(40)) + "}").encode()
            n = 30 * (1 << 20) // (len(obj) + 1)
            self.head("application/dicom+json")
            self.wfile.write(b"[" + obj)
            for _ in range(n // 1000):
                self.wfile.write((b"," + obj) * 1000)
            self.wfile.write(b"]")
        elif mode == "endless":
            off = int(q.get("offset", ["0"])[0])
            self.json([{"00100020": attr("LO", "ZZ-NOBODY"),
                        "0020000D": attr("UI", "1.2.%d.%d" % (off + 1, i + 1))}
                       for i in range(int(q.get("limit", ["100"])[0]))])
        elif rest == "studies":
            self.json([{"00100020": attr("LO", "TH-01"), "0020000D": attr("UI", STUDY),
                        "00080020": attr("DA", "20200101")}])
        elif rest == "studies/%s/series" % STUDY:
            self.json([{"0020000E": attr("UI", SERIES), "00080060": attr("CS", "CT"),
                        "00201209": attr("IS", 1)}])
        elif rest == "studies/%s/series/%s/instances" % (STUDY, SERIES):
            self.json([{"00080018": attr("UI", SOP)}])
        elif mode == "wado":
            self.head(MULTIPART)
            self.wfile.write(("--%s\r\nContent-Type: application/dicom\r\n\r\n" % BOUND).encode())
            zeros = bytes(1 << 16)
            while True:
                self.wfile.write(zeros)
        elif mode in ("esc", "escct"):
            ctype = "text/evil\x1b[31mRED\rCR"
            body = ("--%s\r\nContent-Type: %s\r\n\r\nx\r\n--%s--\r\n" %
                    (BOUND, ctype if mode == "esc" else "application/dicom", BOUND))
            body = body.encode("latin-1")
            self.head(MULTIPART if mode == "esc" else ctype, len(body), body)
        else:
            self.send_error(404)


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
