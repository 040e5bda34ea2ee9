#!/usr/bin/env sh
# Re-creates models/crossfusion-demo from nothing: 60 synthetic phantom patients (seed 7), slide
# features with the texture_stats encoder (computed by the training command), 5-fold CrossFusion.
# Run from the repository root. The model means nothing clinically: phantoms only.
set -eu
W="${TMPDIR:-/tmp}/harm3-crossfusion-demo" && rm -rf "$W" && harm3 synth --n 60 --seed 7 --out "$W" && harm3 train crossfusion "$W/cohort.csv" --out models/crossfusion-demo --config models/crossfusion-demo/train.yaml --overwrite
