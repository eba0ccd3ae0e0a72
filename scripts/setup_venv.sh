#!/usr/bin/env bash
# Creates .venv (Python 3.11) with the project, its pinned dependencies and
# what the tests need (pytest, Ray for deploy.launch_ray).
# Run by the other scripts; safe to run again: pip runs only when
# pyproject.toml changed since the last install (its hash is kept in .venv).
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
stamp="$repo/.venv/pyproject.sha256"
wanted="$(sha256sum "$repo/pyproject.toml" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ] || ! "$repo/.venv/bin/python" -c '' 2>/dev/null; then
  rm -f "$stamp"
  "$repo/.venv/bin/python" -m pip install --quiet --upgrade pip
  "$repo/.venv/bin/python" -m pip install --quiet -e "$repo[test,ray]"
  echo "$wanted" > "$stamp"
fi
