#!/usr/bin/python3
# tests/fuzz/dicom-corpus.py [DIR] - write the seed corpus of fuzz-dicom.c
# (default tests/fuzz/corpus/dicom): small files from pydicom's test files,
# as stored and made into what a PACS may send (pixel data cut down, long
# and odd values, missing UIDs, a truncated file).  Kept under ~200 KB.
import copy
import os
import sys

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "dicom")
os.makedirs(out, exist_ok=True)

# As stored: the transfer syntaxes and oddities a PACS hands on.
AS_IS = [
    "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_truncated.dcm",
    "ExplVR_LitEndNoMeta.dcm", "ExplVR_BigEndNoMeta.dcm", "no_meta_group_length.dcm",
    "meta_missing_tsyntax.dcm", "nested_priv_SQ.dcm", "UN_sequence.dcm", "rtplan_truncated.dcm",
    "rtstruct.dcm", "reportsi.dcm", "SC_rgb_rle.dcm", "JPEG2000.dcm", "image_dfl.dcm",
    "SC_rgb_small_odd.dcm",
]
for name in AS_IS:
    try:
        src = get_testdata_file(name)
    except Exception:
        src = None
    if not src or os.path.getsize(src) > 12000:
        continue
    with open(src, "rb") as f, open(os.path.join(out, name), "wb") as g:
        g.write(f.read())


def small_ct():
    """CT_small.dcm with 8x8 pixels: a whole, valid file of a few KB."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.Rows = ds.Columns = 8
    ds.PixelData = ds.PixelData[: 8 * 8 * 2]
    return ds


def save(ds, name, implicit=False):
    if implicit:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.is_implicit_VR, ds.is_little_endian = True, True
    ds.save_as(os.path.join(out, name), write_like_original=False)


save(small_ct(), "ct-8x8.dcm")
save(small_ct(), "ct-8x8-implicit.dcm", implicit=True)

ds = small_ct()
ds.PatientID = "P" * 256                   # the longest PatientID that fits
ds.StudyDate = "2020.01.02"                # retired ACR-NEMA form
save(ds, "ct-long-id-acr-date.dcm")

ds = small_ct()
ds.PatientID = "P" * 257                   # too long: an error, never cut
save(ds, "ct-id-too-long.dcm")

ds = small_ct()
ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498." + "1" * 38   # 64 characters
ds.SeriesInstanceUID = ds.SOPInstanceUID[:-1] + "2"
ds.Modality = "ABCDEFGHIJKLMNOP"
save(ds, "ct-uid-64.dcm")

ds = small_ct()
del ds.SeriesInstanceUID
save(ds, "ct-no-series-uid.dcm")

ds = small_ct()
del ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID
save(ds, "ct-no-uids.dcm")

ds = small_ct()
icon = Dataset()
icon.Rows = icon.Columns = 2
icon.BitsAllocated = 8
icon.PixelData = b"\0\1\2\3"
ds.IconImageSequence = Sequence([icon])     # a PixelData before the PixelData
save(ds, "ct-icon-sequence.dcm")

# What DCMTK would write as no JSON, mended by dcm_json: a DS of "5.", an
# FD NaN, a NUL and a Latin-1 byte in text with no character set; and
# overlay data, left out.
ds = small_ct()
del ds.SpecificCharacterSet
ds.SliceThickness = "5."
ds.add_new(0x00409224, "FD", float("nan"))
ds.add_new(0x00409225, "FD", [1.0, float("inf")])
ds.add_new(0x00081030, "LO", b"AB\0CD")
ds.add_new(0x0008103E, "LO", b"M\xfcller")
ds.add_new(0x60000010, "US", 8)
ds.add_new(0x60003000, "OW", b"\0" * 16)
save(ds, "ct-json-mend.dcm")

# Cut inside the pixel data: the header reads, the whole file does not.
path = os.path.join(out, "ct-8x8.dcm")
with open(path, "rb") as f:
    data = f.read()
with open(os.path.join(out, "ct-8x8-cut.dcm"), "wb") as f:
    f.write(data[:-40])

# No preamble, no meta header: a bare dataset.
ds = small_ct()
ds.preamble = None
ds.file_meta = FileMetaDataset()
ds.is_implicit_VR, ds.is_little_endian = False, True
ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.save_as(os.path.join(out, "ct-bare-dataset.dcm"), write_like_original=True)

print(sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)), "bytes in",
      len(os.listdir(out)), "files")
