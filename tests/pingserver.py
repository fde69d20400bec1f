#!/usr/bin/python3
"""tests/pingserver.py - a healthchecks-like HTTP server on 127.0.0.1 that
records every request: one line "METHOD PATH BODYBYTES" per request in
LOG, each body in LOG.body.N.  --ready FILE gets the port once listening;
--status N answers N (default 200)."""
import argparse
import http.server
import threading

ap = argparse.ArgumentParser()
ap.add_argument("--log", required=True)
ap.add_argument("--ready", required=True)
ap.add_argument("--status", type=int, default=200)
args = ap.parse_args()
lock = threading.Lock()
count = [0]


class Handler(http.server.BaseHTTPRequestHandler):
    def record(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        with lock:
            count[0] += 1
            with open(f"{args.log}.body.{count[0]}", "wb") as f:
                f.write(body)
            with open(args.log, "a") as f:
                f.write(f"{self.command} {self.path} {len(body)}\n")
        self.send_response(args.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    do_GET = do_POST = do_HEAD = record

    def log_message(self, *a):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(args.ready + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(args.ready + ".tmp", args.ready)
srv.serve_forever()
