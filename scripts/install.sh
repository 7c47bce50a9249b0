#!/usr/bin/env bash
# Install everything StyleScope needs on a fresh Debian/Ubuntu machine: the Python package with its dev extras,
# and Chromium for the browser tests. Idempotent; run as root or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
python -m pip install -q -e ".[dev]"
