#!/usr/bin/python3
"""durable_copy.py SRC DST THREADS - the disk's part of a download that
keeps what it writes: every file under SRC (read from the page cache) is
written into the empty folder DST under a temp name, fsynced, and renamed,
THREADS files at a time.  No network, no DICOM.  Prints the number of
files and bytes."""

import concurrent.futures
import os
import sys


def main():
    src, dst, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    files = sorted(os.path.join(d, f) for d, _, names in os.walk(src) for f in names)
    os.makedirs(dst, exist_ok=True)

    def one(i):
        with open(files[i], "rb") as f:
            data = f.read()
        tmp = os.path.join(dst, ".tmp-%d" % i)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(dst, "%d.dcm" % i))
        return len(data)

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(one, range(len(files))))
    print(len(files), total)


if __name__ == "__main__":
    main()
