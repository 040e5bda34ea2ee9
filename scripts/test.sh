#!/usr/bin/env bash
# Set up, then run the whole test suite headless (pytest-xvfb starts Xvfb for GUI tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_API=pyqt6
exec .venv/bin/python -m pytest "$@"
