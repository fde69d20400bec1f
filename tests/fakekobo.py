#!/usr/bin/python3
"""fakekobo.py - a stand-in for a KoboToolbox KPI server (API v2): the
endpoints a client uses to pull form submissions, and /_test/ endpoints
for a test to change and watch it.  Standard library only.

    fakekobo.py --token TOKEN [--forms FILE] [--page N] [--port N]
                [--log FILE] [--ready FILE] [--tls-cert FILE --tls-key FILE]

Listens on 127.0.0.1:N (default 0: any free port); --ready FILE gets the
port once it listens; --log FILE gets "METHOD PATH STATUS" a request.
HTTP/1.1 keep-alive; JSON answers with a Content-Length; bad input: 400.
With --tls-cert and --tls-key (PEM): HTTPS only, that certificate, and
next/previous URLs https://; a client that refuses the certificate is
dropped quietly.

--forms: {"UID": {"name": "Baseline visit", "submissions": N}, ...}: N
generated submissions a form, or a list of objects, used as given (a
missing _id or _submission_time filled in).  _id is unique across the
server; the clock starts at 2024-05-01T00:00:00 and moves one second a
new submission, so _submission_time (no zone, as Kobo) grows with _id.

Kobo API, with "Authorization: Token TOKEN" (else 401 {"detail": "Invalid
token."}, or "Authentication credentials were not provided."):
  GET /api/v2/assets/?asset_type=survey[&limit=L][&start=S or &offset=S]
      {"count", "next", "previous", "results": [asset]}, limit default 100
  GET /api/v2/assets/UID/data/?format=json[&limit=L][&start=S][&query=Q]
      [&sort={"field": 1 or -1}]  submissions by ascending _id; limit is
      capped at --page (default 1000), also the default.  Q is Mongo-like:
      {"f": value} or {"f": {"$gt|$gte|$lt|$lte|$eq|$ne|$in|$nin": v}},
      strings compared with strings, numbers with numbers; bad Q: 400.
  Unknown UID: 404 {"detail": "Not found."}.  next/previous are absolute
  URLs with the same parameters, start moved.

Test control (no token):
  POST /_test/forms/UID/add?n=K[&name=NAME][&depth=D]  K (default 1)
       submissions later than all before; makes the form if unknown ->
       {"ids": [...]}.  With D >= 2, each is nested D levels deep, itself
       the first: its field "nested" holds D - 1 levels of [[...0]]
  POST /_test/forms/UID/delete?id=ID
  POST /_test/forms/UID/edit?id=ID   as a Kobo edit: new comment, _uuid and
       meta/instanceID, meta/deprecatedID the old one; _id and time stay
  GET  /_test/stats   {"requests": /api/v2 requests, "unauthorized": 401s,
       "throttled": 429s, "streamed": body bytes of huge and hugechunked
       answers the socket took (a write cut off by a client that went
       away is not counted), and by uid: "data_requests" (past the
       token and rate limit), "served" (submissions sent in data pages),
       "last_query" (the last data request's query parameter, or null)}
  POST /_test/reset_stats
  POST /_test/ratelimit?n=K   the next K /api/v2 requests with a good
       token: 429, Retry-After: 1
  POST /_test/fail?n=K[&status=S]  the next K /api/v2 requests with a good
       token (and not throttled): status S (default 503); "failed" in stats
  POST /_test/hostile?mode=MODE[&uid=UID]  later data answers of UID (or
       of all; a UID's own mode wins) misbehave until mode=off (of that
       UID; without one, off clears all):
       huge     300 MiB body (one endless comment), streamed, Content-Length
       hugechunked  the same body with Transfer-Encoding: chunked, no
                Content-Length: its size shows only as it streams
       deep     a value nested 100000 levels deep (valid JSON)
       nul      \u0000 in values and in a key
       notjson  200, body "<html>..."
       countlie the true page, count 1000 too high, next null
       loop     the true page, next pointing back at it
       slow     the true page after 60 s
       forbidden 403 {"detail": "You do not have permission to perform
                this action."}, as KPI answers a token whose account may
                not see the form's data
  huge, hugechunked, deep, nul: count 1, next null, one submission of _id
  999999; these, notjson and forbidden count nothing in "served".
"""
import argparse
import datetime
import json
import os
import ssl
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--token", required=True)
ap.add_argument("--forms")
ap.add_argument("--page", type=int, default=1000)
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--log")
ap.add_argument("--ready")
ap.add_argument("--tls-cert")
ap.add_argument("--tls-key")
args = ap.parse_args()
if bool(args.tls_cert) != bool(args.tls_key):
    ap.error("--tls-cert and --tls-key go together")

NS = uuid.UUID("6b0f6c1e-3c1a-4f5e-9a57-4b0b0f0b0a11")   # uuid5s: deterministic
MODES = ("huge", "hugechunked", "deep", "nul", "notjson", "countlie", "loop", "slow",
         "forbidden")
MISSING = object()
lock = threading.Lock()     # guards everything below
forms = {}                  # uid -> {"name", "subs": [submission], "created"}
state = {"last_id": 0, "clock": datetime.datetime(2024, 5, 1), "ratelimit": 0, "edits": 0,
         "fail": 0, "fail_status": 503}
hostile = {}                # uid or "*" -> mode
stats = {}
BASE = ""                   # http://127.0.0.1:PORT, once listening


def isotime(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def tick():
    """The time of the next new submission."""
    state["clock"] += datetime.timedelta(seconds=1)
    return isotime(state["clock"])


def nested(depth):
    """A value nested depth levels deep: [[...[0]...]]."""
    v = 0
    for _ in range(depth):
        v = [v]
    return v


def generated(uid, sid, t):
    u = str(uuid.uuid5(NS, "%s/%d" % (uid, sid)))
    return {"_id": sid, "_uuid": u, "_submission_time": t, "_submitted_by": None,
            "_status": "submitted_via_web",
            "formhub/uuid": uuid.uuid5(NS, uid).hex, "meta/instanceID": "uuid:" + u,
            "_attachments": [], "_geolocation": [None, None], "_tags": [],
            "_notes": [], "_validation_status": {},
            "participant_id": "TH-%02d-AA" % (sid % 100),
            "group_visit/weight_kg": "%.1f" % (50 + sid * 7 % 400 / 10),
            "comment": "Müller – café ✓ #%d" % sid}


def add_form(uid, name):
    if uid not in forms:
        forms[uid] = {"name": name or uid, "subs": [], "created": state["clock"]}
        for key, zero in (("data_requests", 0), ("served", 0), ("last_query", None)):
            stats[key].setdefault(uid, zero)


def add_subs(uid, n=0, given=(), depth=1):
    """Append n generated submissions (each depth levels deep), or the
    given ones; -> their _ids.  Given _ids and times push the id counter
    and the clock past them."""
    ids = []
    for s in given or [None] * n:
        if s is None:
            state["last_id"] += 1
            s = generated(uid, state["last_id"], tick())
            if depth > 1:
                s["nested"] = nested(depth - 1)
        s = dict(s)
        if "_id" not in s:
            state["last_id"] += 1
            s["_id"] = state["last_id"]
        if isinstance(s["_id"], int):
            state["last_id"] = max(state["last_id"], s["_id"])
        if "_submission_time" not in s:
            s["_submission_time"] = tick()
        try:
            t = datetime.datetime.fromisoformat(s["_submission_time"])
            state["clock"] = max(state["clock"], t.replace(tzinfo=None, microsecond=0))
        except (TypeError, ValueError):
            pass
        forms[uid]["subs"].append(s)
        ids.append(s["_id"])
    return ids


def reset_stats():
    stats.update(requests=0, unauthorized=0, throttled=0, failed=0, streamed=0,
                 data_requests={u: 0 for u in forms},
                 served={u: 0 for u in forms}, last_query={u: None for u in forms})


# ---- MongoDB-style query matching -------------------------------------------

def kind(v):
    number = isinstance(v, (int, float)) and not isinstance(v, bool)
    return "number" if number else type(v).__name__


def same(have, want):
    """Equality, as Mongo: no "5" == 5; a missing field equals null."""
    return want is None if have is MISSING else kind(have) == kind(want) and have == want


CMP = {"$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b,
       "$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b}


def test(op, have, arg):
    if op in CMP:
        return (have is not MISSING and kind(have) == kind(arg)
                and kind(arg) in ("number", "str") and CMP[op](have, arg))
    if op in ("$in", "$nin"):
        if not isinstance(arg, list):
            raise ValueError(op + " needs a list")
        return any(same(have, a) for a in arg) == (op == "$in")
    if op in ("$eq", "$ne"):
        return same(have, arg) == (op == "$eq")
    raise ValueError("unknown operator " + op)


def match(doc, cond):
    if not isinstance(cond, dict):
        raise ValueError("a query must be a JSON object")
    for key, want in cond.items():
        if key.startswith("$"):
            raise ValueError("unknown operator " + key)
        elif isinstance(want, dict) and want and all(k.startswith("$") for k in want):
            if not all(test(op, doc.get(key, MISSING), arg) for op, arg in want.items()):
                return False
        elif not same(doc.get(key, MISSING), want):
            return False
    return True


def order(v):
    """A sort key of any JSON value: null < numbers < strings < the rest."""
    r = {"NoneType": 0, "number": 1, "str": 2}.get(kind(v), 3)
    return (r, v if r in (1, 2) else json.dumps(v, sort_keys=True))


def sort_subs(subs, sort):
    if not isinstance(sort, dict) or any(d not in (1, -1) for d in sort.values()):
        raise ValueError('sort must be like {"_id": 1} or {"_id": -1}')
    for key, d in reversed(list(sort.items())):     # stable sorts: the first key last
        subs.sort(key=lambda s: order(s.get(key)), reverse=d < 0)


# ---- HTTP --------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, obj=None, body=None, headers=(), length=None, chunked=False):
        """Answer; with length or chunked and no body, the caller streams
        the body (chunked: in chunks of its own, and the last one)."""
        if body is None and length is None and not chunked:
            body = json.dumps(obj, ensure_ascii=False).encode()
        self.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body) if length is None else length))
        for h in headers:
            self.send_header(*h)
        self.end_headers()
        if body is not None and self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        self.status = None
        try:
            n = int(self.headers.get("Content-Length") or 0)
            if n < 0 or self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                raise ValueError("bad request body")
            if n:
                self.rfile.read(n)
            url = urllib.parse.urlsplit(self.path)
            pairs = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
            q = dict(pairs)
            if url.path.startswith("/_test/"):
                self.control(url.path.split("/")[2:], q)
            elif url.path.startswith("/api/v2/"):
                self.api(url.path, pairs, q)
            else:
                self.reply(404, {"detail": "Not found."})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:
            self.close_connection = True
            if self.status is None:
                try:
                    self.reply(400, {"detail": "%s: %s" % (type(e).__name__, e)})
                except OSError:
                    pass
        finally:
            if args.log:
                with lock, open(args.log, "a") as f:
                    f.write("%s %s %s\n" % (self.command, self.path, self.status))

    do_GET = do_POST = do_HEAD = handle_any

    # -- test control --
    def control(self, parts, q):
        get = self.command in ("GET", "HEAD")
        with lock:
            if parts == ["stats"] and get:
                return self.reply(200, stats)
            if get:
                return self.reply(405, {"detail": "use POST"})
            if parts == ["reset_stats"]:
                reset_stats()
                return self.reply(200, {"ok": True})
            if parts == ["ratelimit"]:
                state["ratelimit"] = int(q.get("n", "1"))
                return self.reply(200, {"ratelimit": state["ratelimit"]})
            if parts == ["fail"]:
                state["fail"] = int(q.get("n", "1"))
                state["fail_status"] = int(q.get("status", "503"))
                return self.reply(200, {"fail": state["fail"]})
            if parts == ["hostile"]:
                mode, uid = q.get("mode"), q.get("uid", "*")
                if mode == "off":
                    hostile.clear() if uid == "*" else hostile.pop(uid, None)
                elif mode in MODES:
                    hostile[uid] = mode
                else:
                    return self.reply(400, {"detail": "mode: off or one of " + ", ".join(MODES)})
                return self.reply(200, {"hostile": hostile})
            if len(parts) != 3 or parts[0] != "forms" or not parts[1]:
                return self.reply(404, {"detail": "Not found."})
            uid, action = parts[1], parts[2]
            if action == "add":
                add_form(uid, q.get("name"))
                ids = add_subs(uid, int(q.get("n", "1")), depth=int(q.get("depth", "1")))
                return self.reply(200, {"ids": ids})
            if action not in ("delete", "edit"):
                return self.reply(404, {"detail": "Not found."})
            sid = int(q["id"])
            subs = forms[uid]["subs"] if uid in forms else []
            hit = [s for s in subs if s.get("_id") == sid]
            if not hit:
                return self.reply(404, {"detail": "Not found."})
            if action == "delete":
                subs.remove(hit[0])
                return self.reply(200, {"deleted": sid})
            s = dict(hit[0])        # a copy: a page being sent may hold the old one
            subs[subs.index(hit[0])] = s
            state["edits"] += 1
            s["comment"] = "edited %d: Größe ✓" % state["edits"]
            old = s.get("meta/instanceID", "")
            s["meta/deprecatedID"] = old
            s["_uuid"] = str(uuid.uuid5(NS, "%s/edit%d" % (old, state["edits"])))
            s["meta/instanceID"] = "uuid:" + s["_uuid"]
            return self.reply(200, {"edited": sid, "submission": s})

    # -- the Kobo API --
    def api(self, path, pairs, q):
        auth = (self.headers.get("Authorization") or "").split()
        if not auth or auth[0].lower() != "token":
            detail = "Authentication credentials were not provided."
        else:
            detail = None if auth[1:] == [args.token] else "Invalid token."
        with lock:
            throttled = not detail and state["ratelimit"] > 0
            state["ratelimit"] -= throttled
            failing = not detail and not throttled and state["fail"] > 0
            state["fail"] -= failing
            stats["failed"] += failing
            stats["requests"] += 1
            stats["unauthorized"] += bool(detail)
            stats["throttled"] += throttled
        if detail:
            return self.reply(401, {"detail": detail}, headers=[("WWW-Authenticate", "Token")])
        if throttled:
            return self.reply(429, {"detail": "Request was throttled. Expected available in 1 second."},
                              headers=[("Retry-After", "1")])
        if failing:
            return self.reply(state["fail_status"], {"detail": "Server Error (test)"})
        parts = [p for p in path.split("/") if p][2:]
        if parts == ["assets"]:
            return self.assets(path, pairs, q)
        if len(parts) == 3 and parts[0] == "assets" and parts[2] == "data":
            return self.data(parts[1], path, pairs, q)
        self.reply(404, {"detail": "Not found."})

    def assets(self, path, pairs, q):
        skey = "offset" if "offset" in q else "start"
        limit, start = intparam(q, "limit", 100) or 100, intparam(q, skey, 0)
        with lock:
            items = [{"uid": u, "name": f["name"], "asset_type": "survey",
                      "url": "%s/api/v2/assets/%s/" % (BASE, u),
                      "data": "%s/api/v2/assets/%s/data/" % (BASE, u),
                      "has_deployment": True, "deployment__active": True,
                      "deployment__submission_count": len(f["subs"]),
                      "date_modified": isotime(f["created"]) + ".000000Z"}
                     for u, f in forms.items()]
        if q.get("asset_type", "survey") != "survey":
            items = []
        self.page(items, path, pairs, skey, start, limit, len(items), False)

    def page(self, items, path, pairs, skey, start, limit, count, loop):
        page = items[start:start + limit]
        nxt = None
        if loop:
            nxt = page_url(path, pairs, skey, start)
        elif start + limit < len(items):
            nxt = page_url(path, pairs, skey, start + limit)
        prev = page_url(path, pairs, skey, max(0, start - limit)) if start > 0 else None
        self.reply(200, {"count": count, "next": nxt, "previous": prev, "results": page})

    def data(self, uid, path, pairs, q):
        with lock:
            if uid not in forms:
                return self.reply(404, {"detail": "Not found."})
            stats["data_requests"][uid] += 1
            stats["last_query"][uid] = q.get("query")
            subs = list(forms[uid]["subs"])
            mode = hostile.get(uid, hostile.get("*"))
        if mode == "forbidden":
            return self.reply(403, {"detail": "You do not have permission to perform this action."})
        limit, start = intparam(q, "limit", args.page), intparam(q, "start", 0)
        limit = args.page if limit <= 0 else min(limit, args.page)
        try:
            cond = json.loads(q["query"]) if q.get("query") else {}
            subs = [s for s in subs if match(s, cond)]
            sort_subs(subs, json.loads(q["sort"]) if q.get("sort") else {"_id": 1})
        except ValueError as e:        # json.JSONDecodeError is a ValueError too
            return self.reply(400, {"detail": "bad query or sort: %s" % e})
        if mode in ("huge", "hugechunked", "deep", "nul", "notjson"):     # no true page at all
            return self.poison(uid, mode)
        if mode == "slow":
            time.sleep(60)
        count = len(subs) + (1000 if mode == "countlie" else 0)
        if mode == "countlie":      # this page is the last one, whatever count says
            subs = subs[:start + limit]
        with lock:
            stats["served"][uid] += len(subs[start:start + limit])
        self.page(subs, path, pairs, "start", start, limit, count, mode == "loop")

    def poison(self, uid, mode):
        """A page of one bad submission, or no JSON at all."""
        if mode == "notjson":
            return self.reply(200, body=b"<html><body><h1>502 Bad Gateway</h1></body></html>\n")
        s = generated(uid, 999999, "2024-05-01T00:00:00")
        if mode == "nul":
            s.update({"comment": "a\0b", "participant_id": "TH-01\0-AA", "bad\0key": "x\0y"})
        else:
            s["deep" if mode == "deep" else "comment"] = "@@HOLE@@"
        text = json.dumps({"count": 1, "next": None, "previous": None, "results": [s]},
                          ensure_ascii=False)
        if mode == "nul":
            return self.reply(200, body=text.encode())
        if mode == "deep":
            deep = '[{"a":' * 50000 + "0" + "}]" * 50000    # 100000 levels
            return self.reply(200, body=text.replace('"@@HOLE@@"', deep).encode())
        pre, post = (x.encode() for x in text.split("@@HOLE@@"))
        total, chunked = 300 << 20, mode == "hugechunked"
        self.reply(200, length=None if chunked else total, chunked=chunked)
        if self.command == "HEAD":
            return

        def send(b):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b) if chunked else b)
            with lock:
                stats["streamed"] += len(b)
        send(pre)
        left, chunk = total - len(pre) - len(post), b"0123456789abcdef" * 65536
        while left > 0:
            send(chunk[:left])
            left -= len(chunk)
        send(post)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")


def intparam(q, name, default):
    n = int(q[name]) if q.get(name) else default
    if n < 0:
        raise ValueError("%s must not be negative" % name)
    return n


def page_url(path, pairs, key, value):
    pairs = [(k, v) for k, v in pairs if k != key] + [(key, str(value))]
    return BASE + path + "?" + urllib.parse.urlencode(pairs)


reset_stats()
if args.forms:
    with open(args.forms, encoding="utf-8") as f:
        spec = json.load(f)
    for uid, form in spec.items():
        add_form(uid, form.get("name"))
        subs = form.get("submissions", 0)
        add_subs(uid, given=subs) if isinstance(subs, list) else add_subs(uid, int(subs))

TLS = None
if args.tls_cert:
    TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    TLS.load_cert_chain(args.tls_cert, args.tls_key)
    TLS.set_alpn_protocols(["http/1.1"])


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def finish_request(self, request, client_address):
        """With TLS, the handshake in the connection's own thread: a
        client that stalls in it holds up no other."""
        if TLS:
            try:
                request = TLS.wrap_socket(request, server_side=True)
            except OSError:         # ssl.SSLError too: the client refused us
                return
        try:
            super().finish_request(request, client_address)
        finally:
            if TLS:
                request.close()


srv = Server(("127.0.0.1", args.port), Handler)
BASE = "%s://127.0.0.1:%d" % ("https" if TLS else "http", srv.server_address[1])
if args.ready:
    with open(args.ready + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(args.ready + ".tmp", args.ready)
srv.serve_forever()
