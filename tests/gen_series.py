#!/usr/bin/python3
"""gen_series.py - make small, real DICOM series for the integration tests.

Every instance is a copy of one of pydicom's real test files (CT_small.dcm or
MR_small.dcm, shipped by Debian's python3-pydicom) with new UIDs, so DCMTK
and any PACS read it as a real image.  Run it with /usr/bin/python3: the
Debian package installs pydicom for that interpreter.

    gen_series.py OUTDIR --patient ID [--studies N] [--series N]
                  [--instances N] [--modality CT|MR] [--seed S]
                  [--study-date YYYYMMDD] [--study-uid UID]
                  [--series-number-base N] [--series-description TEXT]...

writes OUTDIR/<tag>/<study>/<series>/<instance>.dcm, where <tag> is a hash
of the patient and the seed, so that file names never depend on the
PatientID (which may hold '/', '..', spaces or UTF-8) and two runs with
different seeds never collide.  UIDs are 2.25.<decimal> derived from the
seed, the patient and the position, so the same arguments give the same
files.  With --study-uid every series goes into that existing study (use it
to add one more series to a study made earlier; --studies is then 1).
Series k of each study (from 0) gets SeriesNumber base + k and, when
--series-description is given, the k-th description (the last one for the
rest); without it the series have no SeriesDescription.

On stdout, one tab-separated line per series and per instance:

    series    <patient> <study-uid> <series-uid> <number of instances>
              <series number> <modality> <study date> <description>
    instance  <patient> <study-uid> <series-uid> <sop-uid> <path>

the description as a JSON string (null when none), so that tabs and
newlines in it keep to one line.

Two helper modes for tests that corrupt files:

    gen_series.py --patch FILE KEY=VALUE...   set data elements (by keyword)
                                              and write FILE back; the file
                                              meta header follows SOPInstanceUID
                                              and SOPClassUID
    gen_series.py --show FILE                 print PatientID, StudyInstanceUID,
                                              SeriesInstanceUID, SOPInstanceUID
"""

import argparse
import hashlib
import json
import os
import sys

import pydicom
from pydicom.uid import UID

TEST_FILES = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
TEMPLATES = {"CT": "CT_small.dcm", "MR": "MR_small.dcm"}


def make_uid(*parts):
    """A valid UID under the 2.25 (UUID-derived) root, from a hash of parts."""
    h = hashlib.sha256("\x00".join(str(p) for p in parts).encode("utf-8")).digest()
    n = int.from_bytes(h[:16], "big") or 1
    return UID("2.25.%d" % n)


def is_ascii(s):
    try:
        s.encode("ascii")
        return True
    except UnicodeEncodeError:
        return False


def write_instance(template, path, patient, study, series, sop, study_date,
                   series_number, instance_number, frame_of_ref, description):
    ds = pydicom.dcmread(template)
    if not is_ascii(patient):
        ds.SpecificCharacterSet = "ISO_IR 192"
    elif "SpecificCharacterSet" not in ds:
        ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientID = patient
    ds.PatientName = "Test^%s" % hashlib.sha1(patient.encode("utf-8")).hexdigest()[:8]
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.SOPInstanceUID = sop
    ds.FrameOfReferenceUID = frame_of_ref
    ds.StudyID = study[-8:]
    ds.AccessionNumber = study[-12:]
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.ContentDate = study_date
    ds.SeriesNumber = series_number
    if description is not None:
        ds.SeriesDescription = description
    ds.InstanceNumber = instance_number
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # write_like_original=False: a proper preamble + DICM + meta group.
    pydicom.dcmwrite(path, ds, write_like_original=False)


def generate(args):
    template = os.path.join(TEST_FILES, TEMPLATES[args.modality])
    if not os.path.isfile(template):
        sys.exit("gen_series.py: %s missing: install python3-pydicom" % template)
    tag = hashlib.sha256(("%s\x00%s" % (args.seed, args.patient)).encode("utf-8")).hexdigest()[:12]
    root = os.path.join(args.outdir, tag)
    nstudies = 1 if args.study_uid else args.studies
    out = []
    for st in range(nstudies):
        study = UID(args.study_uid) if args.study_uid else make_uid(args.seed, args.patient, "study", st)
        for se in range(args.series):
            series = make_uid(args.seed, args.patient, study, "series", se)
            frame = make_uid(args.seed, args.patient, series, "frame")
            descs = args.series_description
            desc = descs[min(se, len(descs) - 1)] if descs else None
            number = args.series_number_base + se
            out.append("series\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s" % (
                args.patient, study, series, args.instances, number, args.modality,
                args.study_date, json.dumps(desc, ensure_ascii=False)))
            for i in range(args.instances):
                sop = make_uid(args.seed, args.patient, series, "sop", i)
                path = os.path.join(root, "st%d" % (st + 1), "se%d" % (se + 1), "%04d.dcm" % (i + 1))
                write_instance(template, path, args.patient, study, series, sop,
                               args.study_date, number, i + 1, frame, desc)
                out.append("instance\t%s\t%s\t%s\t%s\t%s" % (args.patient, study, series, sop,
                                                          os.path.abspath(path)))
    sys.stdout.write("".join(line + "\n" for line in out))


def patch(path, assignments):
    ds = pydicom.dcmread(path)
    for a in assignments:
        key, sep, value = a.partition("=")
        if not sep:
            sys.exit("gen_series.py: --patch wants KEY=VALUE, got %r" % a)
        setattr(ds, key, value)
        if key == "SOPInstanceUID":
            ds.file_meta.MediaStorageSOPInstanceUID = value
        if key == "SOPClassUID":
            ds.file_meta.MediaStorageSOPClassUID = value
        if key == "PatientID" and not is_ascii(value):
            ds.SpecificCharacterSet = "ISO_IR 192"
    pydicom.dcmwrite(path, ds, write_like_original=False)


def show(path):
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    print("\t".join(str(ds.get(k, "")) for k in
                    ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--patch":
        if len(sys.argv) < 4:
            sys.exit("usage: gen_series.py --patch FILE KEY=VALUE...")
        patch(sys.argv[2], sys.argv[3:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--show":
        for f in sys.argv[2:]:
            show(f)
        return
    p = argparse.ArgumentParser(description="Generate DICOM series from pydicom's test files.")
    p.add_argument("outdir")
    p.add_argument("--patient", required=True, help="PatientID (any characters but backslash)")
    p.add_argument("--studies", type=int, default=1)
    p.add_argument("--series", type=int, default=1, help="series per study")
    p.add_argument("--instances", type=int, default=1, help="instances per series")
    p.add_argument("--modality", choices=sorted(TEMPLATES), default="CT")
    p.add_argument("--seed", default="0")
    p.add_argument("--study-date", default="20240101")
    p.add_argument("--study-uid", help="put the series into this existing study")
    p.add_argument("--series-number-base", type=int, default=1)
    p.add_argument("--series-description", action="append",
                   help="SeriesDescription of the next series (repeat for each)")
    args = p.parse_args()
    if "\\" in args.patient:
        p.error("a PatientID cannot hold a backslash (the DICOM value separator)")
    if min(args.studies, args.series, args.instances) < 1:
        p.error("--studies, --series and --instances must be at least 1")
    generate(args)


if __name__ == "__main__":
    main()
