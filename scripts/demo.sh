#!/usr/bin/env bash
# Set up, then run the main job on the built-in demo patient.
# With a display: opens napari with the plugin, the demo patient in linked viewers.
# Without one: runs the same workflow headless under Xvfb and writes screenshots (and the
# report, once models are present) to ${HARM3_DEMO_OUT:-harm3-demo-output}/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT=${HARM3_DEMO_OUT:-harm3-demo-output}
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec .venv/bin/harm3 demo --out "$OUT" "$@"
else
  echo "demo: no display; running headless under Xvfb, writing to $OUT/"
  exec xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/harm3 demo --headless --out "$OUT" "$@"
fi
