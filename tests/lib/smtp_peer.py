#!/usr/bin/env python3
"""Local SMTP peer for the mail tests, on aiosmtpd (Debian python3-aiosmtpd).

Listens on 127.0.0.1 and prints "PORT <n>", then "CA <path>" for the TLS
modes (a throwaway CA made with the openssl CLI, as http_peer.py does), then
"READY". Exits when stdin reaches EOF (the test died or closed it) or on
SIGTERM.

  --mode plain      no TLS offered (STARTTLS is not in EHLO)
  --mode starttls   STARTTLS offered and required before MAIL
  --mode smtps      TLS from the first byte (implicit TLS)
  --auth USER:PASS  AUTH PLAIN/LOGIN required, with these credentials
  --reject ADDR     RCPT TO:<ADDR> is answered 550 (may repeat)
  --port N          listen on N (a restart on the same port); default: free
  --out DIR         each accepted message is written to DIR/<n>.eml with
                    DIR/<n>.json: {"from", "to", "auth"}; default: none

The peer never relays anything anywhere.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import warnings

warnings.filterwarnings("ignore", module="aiosmtpd")  # AUTH without TLS is on purpose here
import logging  # noqa: E402

logging.getLogger("mail.log").setLevel(logging.CRITICAL)

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def make_ca(d):
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, cwd=d,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=nova-worker test mail CA",
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


class Handler:
    def __init__(self, out, reject, implicit_tls):
        self.out = out
        self.implicit_tls = implicit_tls
        self.reject = set(a.lower() for a in reject)
        self.n = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return "550 5.1.1 <%s>: recipient rejected" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.out:
            with self.lock:
                self.n += 1
                n = self.n
            base = os.path.join(self.out, "%d" % n)
            with open(base + ".part", "wb") as f:
                f.write(envelope.original_content or envelope.content)
            meta = {"from": envelope.mail_from, "to": envelope.rcpt_tos,
                    "auth": bool(session.authenticated),
                    "tls": self.implicit_tls or session.ssl is not None}
            with open(base + ".json", "w") as f:
                json.dump(meta, f)
            os.rename(base + ".part", base + ".eml")
        return "250 2.0.0 OK: queued"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["plain", "starttls", "smtps"], default="plain")
    ap.add_argument("--auth")
    ap.add_argument("--reject", action="append", default=[])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--out")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="nova-smtp-peer-") if a.mode != "plain" else None
    controller = None

    def cleanup_and_exit(*_):
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, cleanup_and_exit)
    kw = {}
    ca = None
    if tmp:
        ca = make_ca(tmp)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(tmp, "server.pem"), os.path.join(tmp, "server.key"))
        if a.mode == "starttls":
            kw.update(tls_context=ctx, require_starttls=True)
        else:
            kw.update(ssl_context=ctx)
    if a.auth:
        user, _, password = a.auth.partition(":")

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (auth_data.login.decode() == user and auth_data.password.decode() == password)
            # handled=False: aiosmtpd answers 535 itself on a failure
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

        kw.update(authenticator=authenticator, auth_required=True, auth_require_tls=False)
    port = a.port or free_port()
    controller = Controller(Handler(a.out, a.reject, a.mode == "smtps"), hostname="127.0.0.1", port=port,
                            ready_timeout=20, **kw)
    controller.start()
    print("PORT %d" % port)
    if ca:
        print("CA %s" % ca)
    print("READY", flush=True)
    while sys.stdin.buffer.read(4096):
        pass
    cleanup_and_exit()


if __name__ == "__main__":
    main()
