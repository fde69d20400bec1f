#!/usr/bin/env bash
# t-dimse-move: every scenario of t-dimse.sh with retrieve = move: the PACS
# sends each series to the storage SCP thlhp-make runs on store_port.
RETRIEVE=move exec bash "$(dirname "$0")/t-dimse.sh" "$@"
