#!/usr/bin/python3
"""gen_ct.py - realistic CT series for the benchmarks (tests/bench/).

    gen_ct.py OUTDIR --patients N --series N --slices N [--prefix BENCH] [--seed S]
              [--part K/M]

writes OUTDIR/<PatientID>/<study>/<series>/<nnnn>.dcm: N patients, one study
each, N series per study, N slices per series.  Every slice is CT Image
Storage, explicit VR little endian, 512x512, 16 bits signed, with
rescale slope 1 / intercept -1024 like a scanner's: a body of soft tissue
inside air, fat under the skin, lungs, a spine and organs of different
densities that grow and shrink slowly from slice to slice, plus Gaussian
noise (what makes real CT hard to compress) and a constant padding value
outside the reconstruction circle, as scanners write it.  The same
arguments give the same files (UIDs are 2.25.<hash> of seed and position).
A file already there with the right size is left alone, so the data is made
once and cached.  --part K/M makes only every M-th series from the K-th,
counting the series of all patients in order (to run M generators at once,
busy alike even for one patient).  Run it with /usr/bin/python3 (Debian's pydicom and numpy).

On stdout, one tab-separated line per series:

    series  <patient> <study-uid> <series-uid> <number of slices> <folder>
"""

import argparse
import hashlib
import os
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
IMPLEMENTATION_UID = "2.25.182917427195226213327418553446377436113"
N = 512


def make_uid(*parts):
    h = hashlib.sha256("\x00".join(str(p) for p in parts).encode()).digest()
    return UID("2.25.%d" % (int.from_bytes(h[:16], "big") or 1))


YY, XX = np.mgrid[0:N, 0:N].astype(np.float32)
YY = (YY - N / 2) / (N / 2)
XX = (XX - N / 2) / (N / 2)
FOV = XX * XX + YY * YY > 0.98          # outside the reconstruction circle


def ellipse(cx, cy, rx, ry):
    return ((XX - cx) / rx) ** 2 + ((YY - cy) / ry) ** 2 <= 1.0


def slice_hu(z, rng, shape):
    """Hounsfield units of slice position z in [0, 1] of one series."""
    a, b, c = shape
    w = 0.80 + 0.05 * np.sin(3.0 * z + a)          # body half-width
    h = 0.55 + 0.04 * np.cos(2.0 * z + b)
    img = np.full((N, N), -1000.0, dtype=np.float32)   # air
    img[ellipse(0, 0.05, w, h)] = -90.0                 # fat
    img[ellipse(0, 0.05, w - 0.05, h - 0.05)] = 40.0    # muscle / soft tissue
    lr = 0.25 + 0.08 * np.sin(4.0 * z + c)              # lungs change most
    img[ellipse(-0.35, -0.02, lr, 0.35)] = -850.0
    img[ellipse(0.35, -0.02, lr * 0.95, 0.33)] = -850.0
    img[ellipse(0.0, -0.05, 0.12, 0.14 + 0.03 * z)] = 50.0   # heart / liver
    img[ellipse(0.0, 0.38, 0.09, 0.08)] = 700.0              # vertebra
    img[ellipse(0.0, 0.38, 0.05, 0.04)] = 250.0              # its marrow
    img[ellipse(0.28 * np.cos(z * 5 + a), 0.25, 0.1, 0.07)] = 60.0 + 40 * z
    # a smooth density gradient across the body (beam hardening, organs)
    img += (25.0 * YY + 15.0 * np.sin(3.0 * XX + z)) * (img > -500)
    img += rng.normal(0.0, 12.0, size=(N, N)).astype(np.float32)   # noise
    return img


def write_slice(path, pid, study, series, sop, k, nslices, arr, series_no, date):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_UID
    meta.ImplementationVersionName = "THLHP_BENCH"
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = sop
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101500"
    ds.AccessionNumber = "A" + pid[-6:]
    ds.Modality = "CT"
    ds.Manufacturer = "THLHP bench"
    ds.InstitutionName = "Bench Hospital"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "CT THORAX ABDOMEN"
    ds.SeriesDescription = "AXIAL %d" % series_no
    ds.PatientName = "Bench^" + pid
    ds.PatientID = pid
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "O"
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = "1.25"
    ds.KVP = "120"
    ds.ConvolutionKernel = "STANDARD"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.StudyID = "1"
    ds.SeriesNumber = str(series_no)
    ds.InstanceNumber = str(k + 1)
    ds.ImagePositionPatient = ["-250.0", "-250.0", "%.2f" % (-1.25 * k)]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = make_uid("for", study)
    ds.SliceLocation = "%.2f" % (-1.25 * k)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = N
    ds.Columns = N
    ds.PixelSpacing = ["0.976562", "0.976562"]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.PixelData = arr.tobytes()
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    tmp = path + ".tmp"
    ds.save_as(tmp, write_like_original=False)
    os.rename(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--patients", type=int, default=8)
    ap.add_argument("--series", type=int, default=4)
    ap.add_argument("--slices", type=int, default=64)
    ap.add_argument("--prefix", default="BENCH")
    ap.add_argument("--seed", default="bench")
    ap.add_argument("--part", default="0/1",
                    help="K/M: only series s of patient p with (p * series + s) %% M == K")
    a = ap.parse_args()
    part, parts = (int(x) for x in a.part.split("/"))
    for p in range(a.patients):
        pid = "%s-%02d" % (a.prefix, p + 1)
        study = make_uid(a.seed, pid, "study")
        date = "2021%02d%02d" % (1 + p % 12, 1 + p % 28)
        for s in range(a.series):
            if (p * a.series + s) % parts != part:
                continue
            series = make_uid(a.seed, pid, "series", s)
            d = os.path.join(a.outdir, pid, study, series)
            os.makedirs(d, exist_ok=True)
            seed = int.from_bytes(hashlib.sha256(str(series).encode()).digest()[:4], "big")
            rng = np.random.default_rng(seed)
            shape = rng.uniform(0, 6.28, size=3)
            for k in range(a.slices):
                path = os.path.join(d, "%04d.dcm" % k)
                hu = slice_hu(k / max(1, a.slices - 1), rng, shape)
                if os.path.exists(path) and os.path.getsize(path) > N * N * 2:
                    continue
                # stored value = HU + 1024 with intercept -1024; the padding
                # outside the circle is -2000 stored, as many scanners write.
                stored = np.clip(np.rint(hu + 1024.0), -2000, 3071).astype("<i2")
                stored[FOV] = -2000
                write_slice(path, pid, study, series, make_uid(a.seed, series, k), k,
                            a.slices, stored, s + 1, date)
            print("series\t%s\t%s\t%s\t%d\t%s" % (pid, study, series, a.slices, d))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
