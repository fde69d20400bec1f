#!/usr/bin/env bash
# t-dimse-faults-move: every scenario of t-dimse-faults.sh with
# retrieve = move: the PACS sends through the proxy's store route to the
# storage SCP thlhp-make runs.
RETRIEVE=move exec bash "$(dirname "$0")/t-dimse-faults.sh" "$@"
