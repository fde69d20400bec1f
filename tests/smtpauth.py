#!/usr/bin/python3
"""tests/smtpauth.py - aiosmtpd (Debian's python3-aiosmtpd) as a mail
server that wants a login: STARTTLS with CERT and KEY before anything,
then AUTH (PLAIN or LOGIN) as USER with PASSWORD, then mail, written to
the Maildir DIR.  --ready FILE gets the port once it listens; a refused
login is counted in FILE.refused.

  smtpauth.py --cert CERT --key KEY --user USER --password PASSWORD
              --maildir DIR --ready FILE
"""
import argparse
import os
import socket
import ssl
import time

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

ap = argparse.ArgumentParser()
for a in ("--cert", "--key", "--user", "--password", "--maildir", "--ready"):
    ap.add_argument(a, required=True)
args = ap.parse_args()


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == args.user.encode()
          and auth_data.password == args.password.encode())
    if not ok:
        with open(args.ready + ".refused", "a") as f:
            f.write(f"{mechanism}\n")
    return AuthResult(success=ok, handled=False)   # handled=True would mean: 535 already sent


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(args.cert, args.key)
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
ctl = Controller(Mailbox(args.maildir), hostname="127.0.0.1", port=port, tls_context=ctx,
                 require_starttls=True, auth_required=True, authenticator=authenticator)
ctl.start()
with open(args.ready + ".tmp", "w") as f:
    f.write(str(port))
os.rename(args.ready + ".tmp", args.ready)
while True:
    time.sleep(3600)
