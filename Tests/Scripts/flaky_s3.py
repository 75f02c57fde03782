#!/usr/bin/env python3
"""A deliberately flaky S3 stand-in on 127.0.0.1 for the retry tests.

usage: flaky_s3.py PORTFILE FAILURES

HEAD /bkt/<key>: the first FAILURES requests answer 503; later ones 200 with a 5-byte object.
HEAD /bkt/always400: always 400. HEAD /bkt/always429: always 429. GET /count: requests seen.
Writes its port to PORTFILE, exits after 60 seconds.
"""
import http.server
import os
import sys
import threading

FAILURES = int(sys.argv[2])
seen = {"requests": 0}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_HEAD(self):
        with lock:
            seen["requests"] += 1
            number = seen["requests"]
        if self.path.endswith("/always400"):
            status = 400
        elif self.path.endswith("/always429"):
            status = 429
        else:
            status = 503 if number <= FAILURES else 200
        self.send_response(status)
        self.send_header("Content-Length", "5" if status == 200 else "0")
        if status == 200:
            self.send_header("ETag", '"abc"')
        self.end_headers()

    def do_GET(self):
        body = str(seen["requests"]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
# The socket listens already; the port file appears whole (renamed into place).
with open(sys.argv[1] + ".tmp", "w") as out:
    out.write(str(server.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
threading.Timer(60, server.shutdown).start()
server.serve_forever()
