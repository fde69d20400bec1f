#!/usr/bin/python3
"""gen_tree.py - a large tree of small, real DICOM files for the no-op and
scaling benchmarks (tests/bench/noop.sh, tests/bench/scaling.sh).

    gen_tree.py OUTDIR --patients N --series N --instances N [--prefix BP] [--vary]

writes OUTDIR/<PatientID>/se<k>/<i>.dcm: N patients (<prefix><6 digits>),
one study each, N series per study, N instances per series.  Each file is
pydicom's CT_small.dcm without its private elements, cut down to an 8x8
image (1.9 KB): a valid CT image that DCMTK parses, pixel data included, with its own
PatientID, StudyInstanceUID, SeriesInstanceUID and SOPInstanceUID (the
folder source reads them from each header).

Writing 200,000 files through pydicom would take minutes, so the dataset
is serialized once with fixed-width placeholder values and every file is
that byte string with the placeholders replaced by values of the same
width (so no length field changes).  UIDs are
1.2.826.0.1.3680043.10.1077.<kind>.1<patient>[.1<series>[.1<instance>]],
zero-padded inside, all digits after a leading 1, so they are valid UIDs.

With --vary (the metadata benchmark, tests/bench/metadata.sh), the headers
differ as a scanner's would: per series SeriesNumber, SeriesDescription,
SliceThickness and SpacingBetweenSlices (0.625, 1, 1.25, 2.5 or 5 mm: two
series in five at most 1 mm) and ConvolutionKernel (STANDARD, BONE, LUNG or
SOFT), per instance InstanceNumber and the slice's z in ImagePositionPatient
and SliceLocation.  Without it the files are the same as before.

A tree already complete (OUTDIR.complete, next to it, names the same
arguments) is left alone, so reruns are free; nothing but DICOM files is
written inside OUTDIR (the folder source would warn about anything else).  Prints one line on stderr when done.
"""

import argparse
import os
import shutil
import sys
import time

import pydicom

TEST_FILES = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
ROOT = "1.2.826.0.1.3680043.10.1077"


def uids(p, s=None, i=None):
    pp = "1%06d" % p
    if s is None:
        return "%s.1.%s" % (ROOT, pp)
    ss = "1%05d" % s
    if i is None:
        return "%s.2.%s.%s" % (ROOT, pp, ss)
    return "%s.3.%s.%s.1%06d" % (ROOT, pp, ss, i)


# --vary: the per-series and per-instance values, each written over a
# placeholder of the same width (trailing spaces are padding in SH, LO, DS
# and IS; leading zeros are fine in IS).
THICKNESS = ["0.625", "1.000", "1.250", "2.500", "5.000"]
KERNELS = ["STANDARD", "BONE", "LUNG", "SOFT"]
PH_THICK, PH_KERNEL, PH_SNUM, PH_DESC = b"7.777", b"KKKKKKKK", b"8888", b"DDDDDDDDDDDDDDDDDDDD"
PH_INUM, PH_Z = b"999999", b"-6666.666"


def series_values(p, s):
    """SliceThickness, ConvolutionKernel, SeriesNumber, SeriesDescription of
    series s of patient p, each as wide as its placeholder."""
    th = THICKNESS[(p + s) % len(THICKNESS)]
    k = KERNELS[(3 * p + s) % len(KERNELS)]
    desc = "AX %s %s" % (th, k)
    return (th.encode(), k.ljust(len(PH_KERNEL)).encode(), b"%04d" % s,
            desc.ljust(len(PH_DESC))[: len(PH_DESC)].encode())


def template(prefix, vary=False):
    """The serialized file for patient 0, series 0, instance 0, and the
    placeholders to replace."""
    ds = pydicom.dcmread(os.path.join(TEST_FILES, "CT_small.dcm"))
    # A quarter of the elements: the first build (headers read by the
    # folder source, every file parsed by validate) is 3x faster.
    ds.remove_private_tags()
    for kw in ("OtherPatientIDsSequence", "DataSetTrailingPadding"):
        if kw in ds:
            delattr(ds, kw)
    ds.Rows = 8
    ds.Columns = 8
    ds.PixelData = bytes(range(128))
    pid = "%s%06d" % (prefix, 0)
    ds.PatientID = pid
    ds.PatientName = "Bench^" + pid
    ds.StudyInstanceUID = uids(0)
    ds.SeriesInstanceUID = uids(0, 0)
    ds.SOPInstanceUID = uids(0, 0, 0)
    ds.FrameOfReferenceUID = uids(0, 0) + ".9"
    ds.StudyID = "1"
    ds.AccessionNumber = "A" + pid
    if vary:
        ds.SliceThickness = PH_THICK.decode()
        ds.SpacingBetweenSlices = PH_THICK.decode()
        ds.ConvolutionKernel = PH_KERNEL.decode()
        ds.SeriesNumber = PH_SNUM.decode()
        ds.SeriesDescription = PH_DESC.decode()
        ds.InstanceNumber = PH_INUM.decode()
        ds.ImagePositionPatient = ["-158.135803", "-179.035797", PH_Z.decode()]
        ds.SliceLocation = PH_Z.decode()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    tmp = "/tmp/.gen_tree-%d.dcm" % os.getpid()
    pydicom.dcmwrite(tmp, ds, write_like_original=False)
    with open(tmp, "rb") as f:
        data = f.read()
    os.unlink(tmp)
    return data


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--patients", type=int, required=True)
    ap.add_argument("--series", type=int, required=True)
    ap.add_argument("--instances", type=int, required=True)
    ap.add_argument("--prefix", default="BP")
    ap.add_argument("--vary", action="store_true",
                    help="per-series and per-instance values, as a scanner writes them")
    a = ap.parse_args()
    if a.patients > 999999 or a.series > 99999 or a.instances > 999999:
        ap.error("at most 999999 patients, 99999 series, 999999 instances")
    stamp = "%d %d %d %s%s\n" % (a.patients, a.series, a.instances, a.prefix,
                                  " vary" if a.vary else "")
    done = a.outdir.rstrip("/") + ".complete"
    try:
        with open(done) as f:
            if f.read() == stamp:
                return
    except FileNotFoundError:
        pass
    # A partial or different tree: start again (a killed run, other sizes).
    shutil.rmtree(a.outdir, ignore_errors=True)
    t0 = time.time()
    data = template(a.prefix, a.vary)
    pid0 = ("%s%06d" % (a.prefix, 0)).encode()
    st0, se0, sop0 = uids(0).encode(), uids(0, 0).encode(), uids(0, 0, 0).encode()
    # Longest first: the SOP UID starts with neither of the others, but be safe.
    for ph in (sop0, se0, st0, pid0):
        if data.count(ph) < 1:
            sys.exit("gen_tree.py: placeholder %r not found in the template" % ph)
    if a.vary:
        # Thickness twice (SliceThickness, SpacingBetweenSlices), z twice
        # (ImagePositionPatient, SliceLocation), the others once.
        for ph, n in ((PH_THICK, 2), (PH_KERNEL, 1), (PH_SNUM, 1), (PH_DESC, 1),
                      (PH_INUM, 1), (PH_Z, 2)):
            if data.count(ph) != n:
                sys.exit("gen_tree.py: placeholder %r found %d times, not %d"
                         % (ph, data.count(ph), n))
    os.makedirs(a.outdir, exist_ok=True)
    nfiles = 0
    for p in range(1, a.patients + 1):
        pid = ("%s%06d" % (a.prefix, p)).encode()
        st = uids(p).encode()
        dp = data.replace(pid0, pid).replace(st0, st)
        pdir = os.path.join(a.outdir, pid.decode())
        for s in range(1, a.series + 1):
            se = uids(p, s).encode()
            ds_ = dp.replace(se0, se)
            if a.vary:
                th, k, sn, desc = series_values(p, s)
                ds_ = (ds_.replace(PH_THICK, th).replace(PH_KERNEL, k)
                       .replace(PH_SNUM, sn).replace(PH_DESC, desc))
                step = float(th)
            # The SOP UID begins with ROOT.3, the series with ROOT.2: the
            # series replacement left sop0 alone.
            sdir = os.path.join(pdir, "se%d" % s)
            os.makedirs(sdir, exist_ok=True)
            for i in range(1, a.instances + 1):
                b = ds_.replace(sop0, uids(p, s, i).encode())
                if a.vary:
                    b = b.replace(PH_INUM, b"%06d" % i).replace(PH_Z, b"%9.3f" % (-step * i))
                with open(os.path.join(sdir, "%d.dcm" % i), "wb") as f:
                    f.write(b)
                nfiles += 1
    with open(done, "w") as f:
        f.write(stamp)
    sys.stderr.write("gen_tree.py: %d files in %s (%.1f s)\n" % (nfiles, a.outdir, time.time() - t0))


if __name__ == "__main__":
    main()
