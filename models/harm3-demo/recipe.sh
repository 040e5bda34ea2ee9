#!/usr/bin/env bash
# Re-create models/harm3-demo: a tiny HARM3-Fusion trained on synthetic phantoms (core.synth).
# It means NOTHING clinically. Run from the repository root: bash models/harm3-demo/recipe.sh
set -euo pipefail
WORK="${HARM3_DEMO_WORK:-$(mktemp -d)}"
harm3 synth --n 30 --seed 7 --out "$WORK/cohort"
harm3 train harm3 "$WORK/cohort" --out models/harm3-demo --model harm3_fusion_tiny \
    --config models/harm3-demo/config.json --folds 5 --seed 0 --device cpu --name harm3-demo \
    --warning "Trained on synthetic phantoms (napari_harm3.core.synth); it means nothing clinically. Demo and tests only." \
    --overwrite
