#!/usr/bin/env bash
# README command 1: set up, index corpus/ (incremental: quick when nothing changed),
# and serve the web UI on http://127.0.0.1:7860. Extra arguments go to `tpd-qa serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh run
status=0
.venv/bin/tpd-qa index || status=$?
# Status 3 means some files were skipped (listed above); the index is still usable.
if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then exit "$status"; fi
exec .venv/bin/tpd-qa serve "$@"
