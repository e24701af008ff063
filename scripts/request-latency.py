#!/usr/bin/env python3
"""Mean latency of GET /api/v1/namespaces/default/pods/p over one keep-alive TLS
connection with a bearer token: best of three rounds of 2,000 requests.

    python3 scripts/request-latency.py https://127.0.0.1:PORT TOKEN LABEL

Used in BENCHMARKS.md to compare the admin token's path with a ServiceAccount token's
(the pod `p` must exist and the token may read it). Python's own cost per request is
in both figures alike."""
import http.client, ssl, sys, time, urllib.parse
u=urllib.parse.urlparse(sys.argv[1]); tok=sys.argv[2]
ctx=ssl._create_unverified_context()
c=http.client.HTTPSConnection(u.hostname,u.port,context=ctx)
h={"Authorization":"Bearer "+tok}
def run(n):
    t=time.perf_counter()
    for _ in range(n):
        c.request("GET","/api/v1/namespaces/default/pods/p",headers=h); r=c.getresponse(); r.read()
        assert r.status==200, r.status
    return (time.perf_counter()-t)/n*1e6
run(200)
print(sys.argv[3], round(min(run(2000) for _ in range(3)),1), "us/request")
