#!/usr/bin/env bash
# Re-create models/harm3-demo: a tiny HARM3-Fusion trained on 60 synthetic phantoms (core.synth).
# It means NOTHING clinically. One command, from the repository root:
#     bash models/harm3-demo/recipe.sh
# Uses .venv/bin/harm3 when the project's virtualenv exists, else `harm3` on PATH (HARM3=... overrides).
# The phantom cohort goes to $HARM3_DEMO_WORK (default: a fresh temporary folder); an existing cohort
# there is reused. About 2.5 s per case to generate, a few minutes to train on 2 CPU cores.
set -euo pipefail
HARM3="${HARM3:-$( [ -x .venv/bin/harm3 ] && echo .venv/bin/harm3 || echo harm3 )}"
WORK="${HARM3_DEMO_WORK:-$(mktemp -d)}"
if [ ! -f "$WORK/cohort/cohort.csv" ]; then
    "$HARM3" synth --n 60 --seed 7 --out "$WORK/cohort"
fi
OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" "$HARM3" train harm3 "$WORK/cohort" --out models/harm3-demo \
    --model harm3_fusion_tiny --config models/harm3-demo/config.json --folds 5 --seed 0 --device cpu \
    --name harm3-demo --recipe "bash models/harm3-demo/recipe.sh (cohort: harm3 synth --n 60 --seed 7)" \
    --warning "Trained on 60 synthetic phantoms (napari_harm3.core.synth); it means nothing clinically. Demo and tests only." \
    --overwrite
