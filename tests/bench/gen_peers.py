#!/usr/bin/python3
"""gen_peers.py - the same graph as thlhp-make's, for ninja, make and Snakemake.

    gen_peers.py PROJECT

PROJECT is a bench project after `thlhp-make all` (tests/bench/lib.sh,
bench_tree): data/dicom/<patient>/<study>/<series>/<sop>.dcm and
data/zip/<patient>__seriesCount<N>.zip.  Writes, under PROJECT/peers/:

    build.ninja   one edge per archive, every instance file of the patient
                  an explicit input (peers/ninja/<archive>)
    Makefile      the same rules for make (peers/make/<archive>)
    Snakefile     rule all + one zip rule whose input function gives the
                  patient's instance files (peers/snake/<archive>); the
                  lists come from files.json, read once
    files.json    archive name -> {"pid": folder, "inputs": [paths]}

The recipe is what a script would do: `zip -X -1 -r` of the patient's
folder (deflate level 1, like [output] level = 1).  Paths are relative to
PROJECT, where every contender runs.
"""

import json
import os
import sys


def main():
    proj = sys.argv[1]
    os.chdir(proj)
    archives = {}
    for name in sorted(os.listdir("data/zip")):
        if name.endswith(".zip") and "__seriesCount" in name:
            archives[name.split("__seriesCount")[0]] = name
    files = {}
    for pid in sorted(os.listdir("data/dicom")):
        if pid not in archives:
            continue
        inputs = []
        pdir = os.path.join("data/dicom", pid)
        for study in sorted(os.listdir(pdir)):
            for series in sorted(os.listdir(os.path.join(pdir, study))):
                sdir = os.path.join(pdir, study, series)
                inputs += [os.path.join(sdir, f) for f in sorted(os.listdir(sdir)) if f.endswith(".dcm")]
        files[archives[pid][:-4]] = {"pid": pid, "inputs": inputs}
    os.makedirs("peers", exist_ok=True)
    recipe = "rm -f {out} && cd data/dicom/{pid} && zip -q -X -1 -r ../../../{out} ."
    with open("peers/files.json", "w") as f:
        json.dump(files, f)
    with open("peers/build.ninja", "w") as f:
        f.write("builddir = peers\n\nrule zip\n  command = mkdir -p peers/ninja && %s\n\n"
                % recipe.format(out="$out", pid="$pid"))
        for name, v in files.items():
            f.write("build peers/ninja/%s.zip: zip %s\n  pid = %s\n"
                    % (name, " ".join(v["inputs"]), v["pid"]))
        f.write("\ndefault %s\n" % " ".join("peers/ninja/%s.zip" % n for n in files))
    with open("peers/Makefile", "w") as f:
        # No built-in rules: else make looks for ways to remake each .dcm
        # (RCS, SCCS, %.dcm from %.dcm,v ...), a dozen stats per input.
        f.write("MAKEFLAGS += --no-builtin-rules\n.SUFFIXES:\n\n")
        f.write("all: %s\n\n" % " ".join("peers/make/%s.zip" % n for n in files))
        for name, v in files.items():
            f.write("peers/make/%s.zip: %s\n\t@mkdir -p peers/make && %s\n"
                    % (name, " ".join(v["inputs"]), recipe.format(out="$@", pid=v["pid"])))
        f.write(".PHONY: all\n")
    with open("peers/Snakefile", "w") as f:
        f.write('''import json

FILES = json.load(open("peers/files.json"))

rule all:
    input: expand("peers/snake/{name}.zip", name=FILES)

rule zip:
    output: "peers/snake/{name}.zip"
    input: lambda w: FILES[w.name]["inputs"]
    params: pid=lambda w: FILES[w.name]["pid"]
    shell: "%s"
''' % recipe.format(out="{output}", pid="{params.pid}"))
    sys.stderr.write("gen_peers.py: %d archives, %d inputs\n"
                     % (len(files), sum(len(v["inputs"]) for v in files.values())))


if __name__ == "__main__":
    main()
