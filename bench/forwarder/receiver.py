#!/usr/bin/env python3
"""receiver.py - a minimal webhook sink for the forwarder benchmark and smoke
tests: accepts POSTs (HTTP/1.1 keep-alive), optionally checks the bearer
token, and appends one JSON line per request to --out:
{"t": <receive time, epoch s>, "p": <payload>}.  --fail-until EPOCH answers
503 until then (a webhook outage).  Stdlib only."""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--token")
    args = ap.parse_args()
    lock = threading.Lock()
    out = open(args.out, "a", buffering=1)

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            t = time.time()
            if args.token and self.headers.get("Authorization") != "Bearer " + args.token:
                code = 401
            else:
                code = 200
                with lock:
                    out.write(json.dumps({"t": t, "p": json.loads(body)}) + "\n")
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    srv = ThreadingHTTPServer(("127.0.0.1", args.port), H)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
