#!/usr/bin/env sh
# Re-creates models/crossfusion-demo from nothing, in one command, from the repository root:
#     sh models/crossfusion-demo/recipe.sh
# 140 synthetic phantom patients (harm3 synth, seed 7), slide features with the texture_stats
# encoder (computed by the training command with CLAM's biopsy tissue preset), 5-fold CrossFusion.
# The harm3 command: $HARM3 if set, else .venv/bin/harm3 when the repository's virtualenv exists,
# else `harm3` on PATH. HARM3_DEMO_WORK names the work folder (default $TMPDIR/harm3-crossfusion-demo-n140);
# a folder that already holds the 140-case seed-7 cohort (cohort.csv) is reused, features included.
# CPU only, 2 worker processes: about 30 minutes on 2 quiet cores (features ~10, training ~20). The model means nothing clinically: phantoms only.
set -eu
if [ -z "${HARM3:-}" ]; then
    if [ -x .venv/bin/harm3 ]; then HARM3=.venv/bin/harm3; else HARM3=harm3; fi
fi
W="${HARM3_DEMO_WORK:-${TMPDIR:-/tmp}/harm3-crossfusion-demo-n140}"
if [ ! -f "$W/cohort.csv" ]; then
    rm -rf "$W"
    "$HARM3" synth --n 140 --seed 7 --workers 2 --out "$W"
fi
"$HARM3" train crossfusion "$W/cohort.csv" --out models/crossfusion-demo \
    --config models/crossfusion-demo/train.yaml --name crossfusion-demo --overwrite
