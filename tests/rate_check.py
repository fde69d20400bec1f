#!/usr/bin/python3
"""rate_check.py - did the requests stay under max_requests_per_minute?

    rate_check.py PROXYLOG N [ROUTE]

Reads the requests (C-FIND-RQ, C-GET-RQ, C-MOVE-RQ, or HTTP GETs, from the
connecting side) that tests/dimseproxy.py logged on ROUTE (default "pacs") and checks
them against what thlhp-make promises: never more than N in any 60 s,
evenly spaced, so that any stretch of t seconds holds at most
1 + (N - 1) * t / 60 of them (one more is allowed for scheduling jitter
between thlhp-make's clock and the proxy's).  Prints the count, the span
and the densest stretches; exit 1 when the promise was broken.
"""

import sys

REQUESTS = {"C-FIND-RQ", "C-GET-RQ", "C-MOVE-RQ", "GET"}


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: rate_check.py PROXYLOG N [ROUTE]")
    path, n = sys.argv[1], int(sys.argv[2])
    route = sys.argv[3] if len(sys.argv) == 4 else "pacs"
    ts = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) >= 4 and p[1] == route and p[2] == "c2s" and p[3] in REQUESTS:
                ts.append(float(p[0]))
    ts.sort()
    if len(ts) < 2:
        print("rate_check: %d requests logged: nothing to check" % len(ts))
        sys.exit(1)
    per_s = (n - 1) / 60.0 if n > 1 else 1 / 60.0
    worst, where = 0.0, None
    bad = 0
    for i in range(len(ts)):
        for j in range(i + 1, len(ts)):
            k = j - i + 1
            allowed = 1 + per_s * (ts[j] - ts[i]) + 1
            if k > allowed:
                bad += 1
            ratio = k / allowed
            if ratio > worst:
                worst, where = ratio, (k, ts[j] - ts[i])
    in60 = max(sum(1 for t in ts if a <= t < a + 60) for a in ts)
    print("rate_check: %d requests in %.2f s (limit %d/min); at most %d in any 60 s; "
          "densest: %d in %.2f s (%.0f%% of what the limit allows)"
          % (len(ts), ts[-1] - ts[0], n, in60, where[0], where[1], 100 * worst))
    if bad or in60 > n:
        print("rate_check: the limit was exceeded (%d stretches)" % bad)
        sys.exit(1)


main()
