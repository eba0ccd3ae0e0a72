#!/usr/bin/env bash
# Creates .venv (Python 3.11) with the project and its pinned dependencies.
# Sourced by the other scripts; safe to run again (pip skips what is there).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$(command -v python3.11 || command -v python3 || true)}"
if [ -z "$python" ] || ! "$python" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
  echo "error: Python 3.11 is required (TF 2.15 / Reverb 0.14 wheels); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x "$repo/.venv/bin/python" ]; then
  "$python" -m venv "$repo/.venv"
fi
"$repo/.venv/bin/python" -m pip install --quiet --upgrade pip
"$repo/.venv/bin/python" -m pip install --quiet -e "$repo[test]"
