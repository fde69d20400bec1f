#!/usr/bin/python3
"""cstore.py - a minimal C-STORE SCU for the integration tests, which can
pose as the PACS of a C-MOVE: DCMTK's storescu cannot send the Move
Originator AE Title and Message ID.

    cstore.py [--calling AE] [--called AE] [--move-aet AE --move-id N]
              [--timeout S] HOST PORT FILE

Proposes FILE's SOP class in its transfer syntax, sends it in one C-STORE
and releases.  Prints one line and exits 0:
    rejected RESULT SOURCE REASON   the A-ASSOCIATE-RJ's fields
    status 0xNNNN                   the C-STORE response's status
    closed                          the connection ended first (or timed out)
Uses pydicom only to find the transfer syntax; the dataset is sent as the
file holds it.
"""

import argparse
import socket
import struct
import sys

import pydicom

APP_CONTEXT = b"1.2.840.10008.3.1.1.1"


def uid(s):
    b = s.encode()
    return b + b"\0" if len(b) % 2 else b


def item(kind, body):
    return struct.pack(">BBH", kind, 0, len(body)) + body


def elem(group, el, value):
    """Implicit VR Little Endian."""
    return struct.pack("<HHI", group, el, len(value)) + value


def command(sop_class, sop_uid, move_aet, move_id):
    body = elem(0, 0x0002, uid(sop_class)) + elem(0, 0x0100, struct.pack("<H", 1))
    body += elem(0, 0x0110, struct.pack("<H", 7)) + elem(0, 0x0700, struct.pack("<H", 0))
    body += elem(0, 0x0800, struct.pack("<H", 0)) + elem(0, 0x1000, uid(sop_uid))
    if move_aet is not None:
        aet = move_aet.encode()
        aet += b" " * (len(aet) % 2)
        body += elem(0, 0x1030, aet) + elem(0, 0x1031, struct.pack("<H", move_id))
    return elem(0, 0x0000, struct.pack("<I", len(body))) + body


def pdata(pc, header, data):
    pdv = struct.pack(">IBB", len(data) + 2, pc, header) + data
    return struct.pack(">BBI", 4, 0, len(pdv)) + pdv


def read_pdu(s):
    head = b""
    while len(head) < 6:
        chunk = s.recv(6 - len(head))
        if not chunk:
            raise EOFError
        head += chunk
    kind, _, n = struct.unpack(">BBI", head)
    body = b""
    while len(body) < n:
        chunk = s.recv(n - len(body))
        if not chunk:
            raise EOFError
        body += chunk
    return kind, body


def status_of(cmd):
    i = 0
    while i + 8 <= len(cmd):
        g, e, n = struct.unpack_from("<HHI", cmd, i)
        if (g, e) == (0, 0x0900):
            return struct.unpack_from("<H", cmd, i + 8)[0]
        i += 8 + n
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--calling", default="EVIL")
    p.add_argument("--called", default="THLHP")
    p.add_argument("--move-aet")
    p.add_argument("--move-id", type=int, default=1)
    p.add_argument("--timeout", type=float, default=15)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("file")
    a = p.parse_args()

    ds = pydicom.dcmread(a.file, stop_before_pixels=True)
    ts = str(ds.file_meta.TransferSyntaxUID)
    raw = open(a.file, "rb").read()
    meta_len = struct.unpack_from("<I", raw, 132 + 8)[0]
    data = raw[132 + 12 + meta_len:]

    pc = item(0x30, uid(str(ds.SOPClassUID))) + item(0x40, uid(ts))
    user = item(0x51, struct.pack(">I", 16384))
    rq = struct.pack(">HH16s16s32s", 1, 0, a.called.encode().ljust(16),
                     a.calling.encode().ljust(16), b"")
    rq += item(0x10, APP_CONTEXT) + item(0x20, bytes([1, 0, 0, 0]) + pc) + item(0x50, user)
    s = socket.create_connection((a.host, a.port), timeout=a.timeout)
    try:
        s.sendall(struct.pack(">BBI", 1, 0, len(rq)) + rq)
        kind, body = read_pdu(s)
        if kind == 3:
            print("rejected %d %d %d" % (body[1], body[2], body[3]))
            return 0
        if kind != 2:
            print("closed")
            return 0
        s.sendall(pdata(1, 3, command(str(ds.SOPClassUID), str(ds.SOPInstanceUID),
                                      a.move_aet, a.move_id)))
        for i in range(0, len(data), 16000):
            last = i + 16000 >= len(data)
            s.sendall(pdata(1, 2 if last else 0, data[i:i + 16000]))
        cmd = b""
        while True:
            kind, body = read_pdu(s)
            if kind != 4:
                print("closed")
                return 0
            n, _, header = struct.unpack_from(">IBB", body)
            cmd += body[6:4 + n]
            if header & 2:
                break
        st = status_of(cmd)
        print("status 0x%04X" % st if st is not None else "closed")
        s.sendall(struct.pack(">BBII", 5, 0, 4, 0))
        try:
            read_pdu(s)
        except (EOFError, OSError):
            pass
    except (EOFError, OSError):
        print("closed")
    finally:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
