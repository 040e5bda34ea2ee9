#!/usr/bin/env bash
# Set up napari-harm3 in a virtual environment at .venv of this checkout.
# Idempotent: re-running only installs what changed (stamp = hash of pyproject + constraints).
# Installs the Debian packages Xvfb and Qt need when they are missing and we may (root/sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" - <<'PY' || { echo "setup: napari-harm3 needs Python >= 3.11 (found $($PYTHON --version 2>&1)); set PYTHON=python3.11" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

# --- Debian packages: Xvfb + Qt6 (headless screenshots, GUI tests); DICOM tools and a PACS ------
# dcmtk / libgdcm-tools make compressed copies of real series in the tests, dicom3tools'
# dciodvfy validates what we write, orthanc is the real PACS the tests talk to on 127.0.0.1
# (its Debian service is never started; the tests run their own instance and stop it)
APT_PACKAGES="dcmtk libgdcm-tools dicom3tools orthanc xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-shape0 libxcb-randr0 libegl1 libgl1 libfontconfig1 libdbus-1-3 libglib2.0-0"
if command -v dpkg >/dev/null 2>&1; then
  missing=""
  for p in $APT_PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO="none"; fi
    if [ "$SUDO" = none ]; then
      echo "setup: warning: missing Debian packages:$missing (install them as root for headless use)" >&2
    else
      echo "setup: installing Debian packages:$missing"
      $SUDO apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
  fi
fi

# --- Python environment ------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.harm3-setup-stamp
want=$(cat pyproject.toml requirements/constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! .venv/bin/python -c "import napari_harm3" 2>/dev/null; then
  echo "setup: installing napari-harm3 and its dependencies into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install -qq --upgrade pip wheel setuptools
  # torch and torchvision pinned as a pair in the same command (requirements/constraints.txt)
  .venv/bin/python -m pip install -qq -c requirements/constraints.txt torch torchvision
  .venv/bin/python -m pip install -qq -c requirements/constraints.txt -e ".[qt,test]"
  echo "$want" > "$stamp"
fi
echo "setup: ready (.venv/bin/harm3)"
