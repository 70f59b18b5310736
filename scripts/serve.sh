#!/usr/bin/env bash
# Set up the venv and start the playground on http://127.0.0.1:8000 (PLAYGROUND_* settings apply).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m server "$@"
