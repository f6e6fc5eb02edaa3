#!/usr/bin/env python3
"""Local HTTP/1.1 peer for the HTTP client tests.

Listens on 127.0.0.1 (random port) and prints "PORT <n>" on stdout, then,
with --tls, "CA <path>" for a throwaway CA made with the openssl CLI. Exits
when stdin reaches EOF (the test process died or closed it) or on SIGTERM.

Endpoints (all keep-alive with Content-Length unless noted):
  /ok                          200 "hello"
  /stats                       JSON counters; its own connection is not counted
  /slow?ms=N                   sleeps N ms, then 200 "slow"
  /big?n=N[&chunked=1]         N bytes of "x", with Content-Length or chunked
  /status?code=C[&retry_after=V]
  /flaky?key=K&retry_after=V   first call per key 429 + Retry-After, then 200
  /json                        {"ok": true}
  /notjson                     an HTML page served as text/html
  /echo                        JSON of the method, headers and body received
  /redirect?to=URL             302 to URL
  /drop                        reads the request, closes the connection unanswered
Any path with close=1 answers with "Connection: close" and closes.
"""
import http.server
import json
import os
import shutil
import signal
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

lock = threading.Lock()
stats = {"accepted": 0, "stats_connections": 0, "used": 0, "requests": 0}
flaky_seen = set()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # Clients that give up (timeouts, cancellation, refused certificates)
        # are part of the tests, not errors of the peer.
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def process_request(self, request, client_address):
        with lock:
            stats["accepted"] += 1
        super().process_request(request, client_address)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes; with Nagle on, the body
    # waits for the client's delayed ACK (40 ms per request).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        self.counted = False

    def reply(self, code, body=b"", ctype="text/plain", extra=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if self.close_after:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        self.close_after = q.get("close") == "1"
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if url.path == "/stats":
            with lock:
                if not self.counted:
                    stats["stats_connections"] += 1
                    self.counted = True
                out = {
                    "accepted": stats["accepted"] - stats["stats_connections"],
                    "used": stats["used"],
                    "requests": stats["requests"],
                }
            self.reply(200, json.dumps(out), "application/json", {"Connection": "close"})
            self.close_connection = True
            return
        with lock:
            stats["requests"] += 1
            if not self.counted:
                stats["used"] += 1
                self.counted = True
        if url.path == "/ok":
            self.reply(200, "hello")
        elif url.path == "/slow":
            time.sleep(int(q.get("ms", "1000")) / 1000.0)
            self.reply(200, "slow")
        elif url.path == "/big":
            n = int(q.get("n", "0"))
            if q.get("chunked") == "1":
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                left = n
                while left > 0:
                    k = min(left, 4096)
                    self.wfile.write(b"%x\r\n" % k + b"x" * k + b"\r\n")
                    left -= k
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.reply(200, b"x" * n, "application/octet-stream")
        elif url.path == "/status":
            extra = {}
            if "retry_after" in q:
                extra["Retry-After"] = q["retry_after"]
            self.reply(int(q.get("code", "200")), "status", "text/plain", extra)
        elif url.path == "/flaky":
            key = q.get("key", "")
            with lock:
                first = key not in flaky_seen
                flaky_seen.add(key)
            if first:
                self.reply(429, '{"type":"rate_limit_exceeded"}', "application/problem+json",
                           {"Retry-After": q.get("retry_after", "1")})
            else:
                self.reply(200, "recovered")
        elif url.path == "/json":
            self.reply(200, '{"ok": true}', "application/json")
        elif url.path == "/notjson":
            self.reply(200, "<html><body>not json</body></html>", "text/html")
        elif url.path == "/echo":
            out = {
                "method": self.command,
                "body": body.decode("utf-8", "replace"),
                "content_type": self.headers.get("Content-Type"),
                "accept": self.headers.get("Accept"),
                "user_agent": self.headers.get("User-Agent"),
                "x_test": self.headers.get("X-Test"),
            }
            self.reply(200, json.dumps(out), "application/json")
        elif url.path == "/redirect":
            self.reply(302, "moved", "text/plain", {"Location": q.get("to", "/ok")})
        elif url.path == "/drop":
            self.close_connection = True
            self.connection.shutdown(2)
        else:
            self.reply(404, "not found")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


def make_ca(d):
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, cwd=d,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=nova-worker test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-set_serial", "1", "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")
    return os.path.join(d, "ca.pem")


def main():
    tls = "--tls" in sys.argv[1:]
    tmp = tempfile.mkdtemp(prefix="nova-http-peer-") if tls else None

    def cleanup_and_exit(*_):
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, cleanup_and_exit)
    srv = Server(("127.0.0.1", 0), Handler)
    ca = None
    if tls:
        ca = make_ca(tmp)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(tmp, "server.pem"), os.path.join(tmp, "server.key"))
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("PORT %d" % srv.server_address[1])
    if ca:
        print("CA %s" % ca)
    print("READY", flush=True)

    def watch_stdin():
        while sys.stdin.buffer.read(4096):
            pass
        cleanup_and_exit()

    threading.Thread(target=watch_stdin, daemon=True).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
