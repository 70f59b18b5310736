#!/usr/bin/env bash
# Create .venv and install the playground with its dependencies (idempotent).
# Usage: bash scripts/setup.sh [test]   -- "test" also installs the test tools and Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_install() {  # Debian packages, only when missing
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "$@"
}

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    # A fresh Debian has python3 without venv/ensurepip: install python3-venv first.
    "$PYTHON" -c "import ensurepip, venv" 2>/dev/null || apt_install python3-venv
    "$PYTHON" -m venv .venv
fi
# Fashion-MNIST for training lessons (models/datasets): Debian ships it as plain files.
[ -d /usr/share/datasets/fashion-mnist ] || apt_install dataset-fashion-mnist \
    || echo "dataset-fashion-mnist not installed: the fashion_mnist dataset will be unavailable" >&2
# pip runs only when pyproject.toml changed since the last install (its hash is kept in
# .venv/.installed, with "test" when the test tools came too): a set-up clone starts in
# seconds, a fresh clone (no .venv, no stamp) installs everything. The install is editable,
# so a change of code needs no install.
STAMP=.venv/.installed
WANT="$(sha256sum pyproject.toml | cut -d' ' -f1) ${1:-base}"
HAVE=$(cat "$STAMP" 2>/dev/null || true)
if [ "$HAVE" != "$WANT" ] && [ "$HAVE" != "${WANT% *} test" ]; then
    rm -f "$STAMP"
    .venv/bin/python -m pip install --quiet --upgrade pip
    # torch is pinned in pyproject.toml: 2.13.0 is the local CPU wheel (a looser range pulls CUDA).
    if [ "${1:-}" = "test" ]; then
        .venv/bin/python -m pip install --quiet -e ".[test]"
    else
        .venv/bin/python -m pip install --quiet -e .
    fi
    echo "$WANT" >"$STAMP"
fi
# Browser tests drive Debian's Chromium through Playwright (never `playwright install`);
# tests/server/test_js_bundle.py imports the page's modules, bundled and alone, in Node.
if [ "${1:-}" = "test" ]; then
    [ -x /usr/bin/chromium ] || apt_install chromium
    command -v node >/dev/null || apt_install nodejs
fi
