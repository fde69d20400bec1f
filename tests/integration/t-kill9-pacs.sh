#!/usr/bin/env bash
# t-kill9-pacs: t-kill9.sh against a real PACS (Orthanc over DICOM, C-GET):
# five trials of kill -9 at a random moment of `all -j4` and of its rerun,
# each compared with an uninterrupted run byte for byte.
export KILL9_SOURCE=dimse KILL9_TRIALS=${KILL9_TRIALS:-5} KILL9_JOBS=${KILL9_JOBS:-4}
# shellcheck source-path=SCRIPTDIR source=t-kill9.sh
source "$(dirname "$0")/t-kill9.sh"
