#!/usr/bin/python3
"""tests/maildir.py - what a test SMTP server (aiosmtpd's Mailbox handler)
received into the Maildir DIR, oldest first:

  maildir.py DIR count             how many messages
  maildir.py DIR header N NAME     header NAME of message N (1 = oldest), decoded
  maildir.py DIR body N            the text of message N's text/plain part, decoded
  maildir.py DIR raw N             message N as received, bytes unchanged
  maildir.py DIR check N           exit 1 unless message N is well formed:
                                   Date, Message-ID, From, To, Subject, MIME,
                                   every line under 998 bytes, a UTF-8
                                   text/plain part
"""
import email
import email.policy
import email.utils
import os
import sys


def messages(d):
    """The files of the Maildir's new/ and cur/, by delivery time."""
    files = [os.path.join(d, sub, f) for sub in ("new", "cur")
             if os.path.isdir(os.path.join(d, sub)) for f in os.listdir(os.path.join(d, sub))]
    files.sort(key=lambda f: (os.stat(f).st_mtime_ns, f))
    out = []
    for f in files:
        with open(f, "rb") as fp:
            out.append(fp.read())
    return out


def text_part(msg):
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            return part
    return None


def main():
    d, what = sys.argv[1], sys.argv[2]
    msgs = messages(d)
    if what == "count":
        print(len(msgs))
        return 0
    raw = msgs[int(sys.argv[3]) - 1]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    if what == "raw":
        sys.stdout.buffer.write(raw)
    elif what == "header":
        print(msg.get(sys.argv[4], ""))
    elif what == "body":
        part = text_part(msg)
        sys.stdout.write(part.get_content() if part else "")
    elif what == "check":
        bad = [h for h in ("Date", "Message-ID", "From", "To", "Subject") if not msg.get(h)]
        if not msg.get("MIME-Version"):
            bad.append("MIME-Version")
        if any(len(l.rstrip(b"\r")) >= 998 for l in raw.split(b"\n")):
            bad.append("a line of 998 bytes or more")
        part = text_part(msg)
        if not part or (part.get_content_charset() or "").lower() != "utf-8":
            bad.append("a text/plain; charset=UTF-8 part")
        elif email.utils.parsedate_to_datetime(msg["Date"]) is None:
            bad.append("a Date that parses")
        if bad:
            print("missing: " + ", ".join(bad))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
