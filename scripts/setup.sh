#!/usr/bin/env bash
# Idempotent set-up: a virtualenv in .venv with CPU torch first, then tpd-qa.
# Usage: scripts/setup.sh [run|test]   ("test" adds test tools and Debian's chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
want="${1:-run}"
python="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check)

stamp=".venv/.tpd-qa-$want-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  # CPU torch before anything that depends on it, or pip pulls a multi-GB CUDA build.
  if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    echo "setup: installing CPU torch" >&2
    "${pip[@]}" install -q "torch==2.13.0" \
      || "${pip[@]}" install -q torch --index-url https://download.pytorch.org/whl/cpu
  fi
  extras=""
  [ "$want" = "test" ] && extras="[test]"
  echo "setup: installing tpd-qa$extras and its dependencies" >&2
  "${pip[@]}" install -q -e ".$extras"
  touch "$stamp"
fi

# Debian packages: Tesseract with English and Japanese models for OCR of scanned PDFs and
# images (run and test); for the tests also chromium and a Japanese font (to draw scans).
debs=()
langs="$(tesseract --list-langs 2>/dev/null || true)"
if ! grep -qx eng <<<"$langs" || ! grep -qx jpn <<<"$langs"; then
  debs+=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-jpn)
fi
if [ "$want" = "test" ]; then
  command -v chromium >/dev/null 2>&1 || debs+=(chromium)
  [ -n "$(fc-list :lang=ja 2>/dev/null)" ] || debs+=(fonts-ipafont-gothic)
fi
if [ "${#debs[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${debs[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${debs[@]}" >/dev/null
fi
