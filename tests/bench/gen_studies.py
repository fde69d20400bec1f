#!/usr/bin/python3
"""gen_studies.py - a PACS's worth of patients, studies and series, one small
instance per series, for the query benchmark (tests/bench/query.sh).

    gen_studies.py OUTDIR --patients N [--prefix TH]
    gen_studies.py OUTDIR --new-series PATIENT_NUMBER K

The first form writes OUTDIR/<PatientID>/st<j>/se<k>.dcm: N patients
(<prefix><6 digits>, from 1); patient p has 1 + p % 3 studies (on average
2), study j (from 0) of patient p has 1 + (p + j) % 3 series (on average 2),
each series one instance.  The second writes OUTDIR/new-<K>.dcm: one more
series (series number 90000 + K) in the first study of that patient, for
adding to a study the PACS already holds.

The files are gen_tree.py's (pydicom's CT_small.dcm cut down to an 8x8
image, 1.9 KB) with their values patched in at the same width; the
StudyInstanceUID carries a running study number (from 1) where gen_tree.py
has the patient's, so UIDs are 1.2.826.0.1.3680043.10.1077.1.1<study>,
.2.1<study>.1<series>, .3.1<study>.1<series>.1000001.

A tree already complete (OUTDIR.complete names the same arguments) is left
alone.  Prints the number of patients, studies, series on stdout.
"""

import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_tree import template, uids  # noqa: E402


def layout(patients):
    """(patient number, [series count of each study]) of every patient."""
    for p in range(1, patients + 1):
        yield p, [1 + (p + j) % 3 for j in range(1 + p % 3)]


def placeholders(prefix):
    data = template(prefix)
    ph = (("%s%06d" % (prefix, 0)).encode(), uids(0).encode(), uids(0, 0).encode(),
          uids(0, 0, 0).encode())
    for x in ph:
        if data.count(x) < 1:
            sys.exit("gen_studies.py: placeholder %r not found in the template" % x)
    return data, ph


def instance(data, ph, prefix, p, study, series):
    pid0, st0, se0, sop0 = ph
    return (data.replace(sop0, uids(study, series, 1).encode())
            .replace(se0, uids(study, series).encode())
            .replace(st0, uids(study).encode())
            .replace(pid0, ("%s%06d" % (prefix, p)).encode()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--patients", type=int)
    ap.add_argument("--prefix", default="TH")
    ap.add_argument("--new-series", type=int, nargs=2, metavar=("PATIENT", "K"))
    a = ap.parse_args()
    data, ph = placeholders(a.prefix)
    if a.new_series:
        p, k = a.new_series
        study = 1 + sum(len(s) for q, s in layout(p - 1))
        os.makedirs(a.outdir, exist_ok=True)
        out = os.path.join(a.outdir, "new-%d.dcm" % k)
        with open(out, "wb") as f:
            f.write(instance(data, ph, a.prefix, p, study, 90000 + k))
        print(out)
        return
    if not a.patients or a.patients > 999999:
        ap.error("--patients from 1 to 999999")
    nst = sum(len(s) for p, s in layout(a.patients))
    nse = sum(sum(s) for p, s in layout(a.patients))
    summary = "%d %d %d" % (a.patients, nst, nse)
    stamp = "%d %s v1\n" % (a.patients, a.prefix)
    done = a.outdir.rstrip("/") + ".complete"
    try:
        with open(done) as f:
            if f.read() == stamp:
                print(summary)
                return
    except FileNotFoundError:
        pass
    shutil.rmtree(a.outdir, ignore_errors=True)
    study = 0
    for p, studies in layout(a.patients):
        for j, nseries in enumerate(studies):
            study += 1
            d = os.path.join(a.outdir, "%s%06d" % (a.prefix, p), "st%d" % j)
            os.makedirs(d, exist_ok=True)
            for k in range(1, nseries + 1):
                with open(os.path.join(d, "se%d.dcm" % k), "wb") as f:
                    f.write(instance(data, ph, a.prefix, p, study, k))
    with open(done, "w") as f:
        f.write(stamp)
    print(summary)


if __name__ == "__main__":
    main()
