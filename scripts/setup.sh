#!/usr/bin/env bash
# Create .venv and install the playground with its dependencies (idempotent).
# Usage: bash scripts/setup.sh [test]   -- "test" also installs test tools and Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch is pinned in pyproject.toml: 2.13.0 is the local CPU wheel (a looser range pulls CUDA).
if [ "${1:-}" = "test" ]; then
    .venv/bin/python -m pip install --quiet -e ".[test]"
    if [ ! -x /usr/bin/chromium ]; then
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -q
        $SUDO apt-get install -y -q chromium
    fi
else
    .venv/bin/python -m pip install --quiet -e .
fi
