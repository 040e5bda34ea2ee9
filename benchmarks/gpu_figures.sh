#!/usr/bin/env bash
# GPU figures (issue 3 extraction, issue 4 CrossFusion, HARM3-Fusion) in ONE call on the lent GPU
# machine, ending within BUDGET seconds (default 560: the device allows 600 per command).
#
#   on the GPU machine (carry [".whl"]):   bash benchmarks/gpu_figures.sh
#   local check, tiny sizes, CPU:          DRY=1 PYTHON=.venv/bin/python OUT=/tmp/gpuout bash benchmarks/gpu_figures.sh
#
# .whl/ (git-ignored) holds the wheels the GPU machine lacks: openslide-python + openslide-bin
# (read the phantom), imagecodecs + tifffile (write it), grad-cam + ttach (Grad-CAM); see
# benchmarks/README.md. Steps, each under `timeout`, against one deadline:
#   0  wheels into $SITE, nvidia-smi -L, versions, the imports the benchmarks need
#   1  extraction sweep: encoder alone vs extract_features (workers x batch) vs CLAM's loop
#   2  CrossFusion on the GPU: N10 = 1k/10k/35k, fp32 and bf16 autocast; attention="scores" at 35k
#   3  HARM3-Fusion on the GPU: one prediction, Grad-CAM, one training epoch (72 patients)
#   4  CrossFusion on the CPU (all cores): 10k, then 35k with whatever time is left (peak RSS)
# Everything is logged to $OUT/gpu_figures.log (JSON per step beside it); a summary ends the log.
# DRY=1: tiny sizes on the CPU, and the packages the GPU machine lacks are made unimportable.
# COMPILE=1: step 1 also measures ours and the encoder alone with torch.compile (largest batch).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-benchmarks/output/gpu}
PY=${PYTHON:-python3}
DRY=${DRY:-0}
COMPILE=${COMPILE:-0}   # 1: the extraction sweep also runs the encoder compiled (torch.compile, +1-2 min)
BUDGET=${BUDGET:-560}
SITE=${SITE:-/tmp/site}
START=$(date +%s)
mkdir -p "$OUT"
export OUT PYTHONUNBUFFERED=1

elapsed() { echo $(( $(date +%s) - START )); }
# cap WANT [RESERVE]: WANT seconds, or what is left before the deadline less RESERVE (min 1)
cap() {
  local want=$1 reserve=${2:-20} left
  left=$(( BUDGET - $(elapsed) - reserve ))
  (( left < want )) && want=$left
  (( want < 1 )) && want=1
  echo "$want"
}
SUMMARY=()
# step NAME LIMIT CMD...: run CMD under timeout (its whole process group), log rc and seconds
step() {
  local name=$1 limit=$2 t0 rc took
  shift 2
  t0=$(date +%s)
  echo
  echo "=== [t=$(elapsed) s] $name (limit ${limit} s) ==="
  timeout -k 5 "$limit" "$@"
  rc=$?
  took=$(( $(date +%s) - t0 ))
  if (( rc == 124 || rc == 137 )); then echo "!!! $name stopped at its limit (${limit} s)"; fi
  echo "=== $name: rc $rc, ${took} s ==="
  SUMMARY+=("$(printf '%-40s rc %-4s %5s s' "$name" "$rc" "$took")")
}

setup() {
  echo "gpu_figures.sh  $(date -u +%Y-%m-%dT%H:%M:%SZ)  DRY=$DRY COMPILE=$COMPILE  budget ${BUDGET} s  $($PY -V 2>&1)  $(git rev-parse --short HEAD 2>/dev/null)"
  if compgen -G ".whl/*.whl" >/dev/null; then
    ls .whl/
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
      || echo "!!! wheel install failed"
  else
    echo "!!! no wheels in .whl/ (the run needs carry [\".whl\"])"
  fi
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi -L
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv,noheader
  fi
  echo "CPUs: $(nproc); $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2-)"
  free -g 2>/dev/null | head -2
  df -h /dev/shm /tmp 2>/dev/null
}

check_imports() {
  echo "PYTHONPATH=$PYTHONPATH"
  timeout 120 "$PY" - <<'EOF'
import importlib
import torch
print("torch", torch.__version__, "| CUDA", torch.version.cuda, "| cuDNN", torch.backends.cudnn.version(),
      "| cuda available", torch.cuda.is_available(), "| threads", torch.get_num_threads())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("GPU", p.name, f"{p.total_memory / 2**30:.1f} GiB", p.multi_processor_count, "SMs")
for name in ("numpy", "scipy", "cv2", "tifffile", "imagecodecs", "openslide", "pytorch_grad_cam", "ttach", "timm",
             "torchvision", "safetensors", "sklearn", "matplotlib"):
    try:
        m = importlib.import_module(name)
        extra = f" (library {m.__library_version__})" if name == "openslide" else ""
        print(f"  {name:17s} {getattr(m, '__version__', '?')}{extra}  {m.__file__}")
    except Exception as exc:  # noqa: BLE001
        print(f"  {name:17s} MISSING: {type(exc).__name__}: {exc}")
for mod in ("napari_harm3.core.wsi.extraction", "napari_harm3.core.wsi.encoders", "napari_harm3.core.wsi.patching",
            "napari_harm3.core.io.tiff_writer", "napari_harm3.core.models.crossfusion",
            "napari_harm3.core.models.harm3_fusion", "napari_harm3.core.explain.gradcam",
            "napari_harm3.core.train.harm3_train"):
    try:
        importlib.import_module(mod)
    except Exception as exc:  # noqa: BLE001
        print(f"  import {mod}: FAILED {type(exc).__name__}: {exc}")
print("imports checked")
EOF
}

summary() {
  "$PY" - <<'EOF'
import json
import os

out = os.environ["OUT"]


def load(name):
    try:
        with open(os.path.join(out, name)) as fh:
            return json.load(fh)
    except Exception:  # noqa: BLE001 - a step that did not finish wrote nothing
        return None


print("\n================ summary ================")
e = load("extraction.json")
if e and "best" not in e:
    print("extraction: unfinished; measured so far:", json.dumps({k: e.get(k) for k in ("encoder_alone", "ours", "clam")}))
elif e:
    b, a = e["best"], e.get("agreement") or {}
    x = lambda v: f"{v:.2f}x" if v else "-"  # noqa: E731
    r = lambda v: f"{v:.0f}" if v >= 100 else f"{v:.2f}"  # noqa: E731
    print(f"extraction, {e['encoder']}, {e['patches']} patches 256 px 20x, {e['precision']}, {e['device']} ({e['gpu']}):")
    print(f"  encoder alone p/s by batch, plain: " + ", ".join(f"{k}: {r(v)}" for k, v in e["encoder_alone_plain"].items())
          + "; prepared (BN folded, channels-last): " + ", ".join(f"{k}: {r(v)}" for k, v in e["encoder_alone"].items())
          + "".join(f"; compiled {k}: {r(v)}" for k, v in e.get("encoder_alone_compiled", {}).items()))
    print(f"  ours p/s: " + ", ".join(f"{k}: {r(v)}" for k, v in e["ours"].items())
          + "".join(f"; compiled {k}: {r(v)}" for k, v in e.get("ours_compiled", {}).items()))
    print(f"  CLAM p/s: " + ", ".join(f"{k}: {r(v)}" for k, v in e["clam"].items()))
    print(f"  best ours {r(b['ours'])} p/s (batch {b['batch']}, {b['workers']} workers{', compiled' if b.get('compiled') else ''}) = "
          f"{100 * b['fraction_of_encoder']:.1f} % of the best encoder alone ({r(b['encoder_alone'])} p/s; target >= 80 %), "
          f"{100 * b['fraction_of_plain_encoder']:.1f} % of the plain model alone ({r(b['encoder_alone_plain'])} p/s)")
    print(f"  = {x(b['vs_clam_dataloader'])} the best CLAM DataLoader loop, {x(b['vs_clam_serial'])} the serial loop")
    if a:
        print(f"  features {'agree' if a['ok'] else 'DIFFER'} (max rel err {a['rel_max_err_same_precision']:.1e}, "
              f"min cosine {a['min_cosine_same_precision']:.5f}"
              + (f"; vs fp32 {a['rel_max_err_vs_fp32']:.1e}, cosine {a['min_cosine_vs_fp32']:.5f}" if "rel_max_err_vs_fp32" in a else "")
              + ")")
    else:
        print("  features not compared")
else:
    print("extraction: no result")
for name, label in (("crossfusion_gpu.json", "CrossFusion GPU"), ("crossfusion_gpu_scores.json", "CrossFusion GPU attention=scores"),
                    ("crossfusion_cpu10k.json", "CrossFusion CPU"), ("crossfusion_cpu35k.json", "CrossFusion CPU")):
    rows = load(name)
    if not rows:
        print(f"{label}: no result ({name})")
        continue
    for r in rows:
        head = f"{label:34s} N10 {r['n10']:>6} {r.get('dtype', ''):>5}"
        if r.get("timed_out"):
            print(f"{head}  stopped after {r['elapsed']:.0f} s; peak RSS so far {r['peak_rss_gib']:.2f} GiB")
        elif r.get("failed"):
            print(f"{head}  failed: {r['failed']}")
        else:
            gpu = f", peak GPU {r['peak_gpu_gib']:.2f} GiB (before {r['gpu_before_gib']:.2f})" if "peak_gpu_gib" in r else ""
            print(f"{head}  {r['seconds']:8.3f} s, {r['threads']} threads, peak RSS {r['peak_rss_gib']:.2f} GiB{gpu}")
h = load("harm3_gpu.json")
if h:
    p, t = h
    print(f"HARM3-Fusion {p['model']} ({p['params_M']:.1f} M params) on {p['device']}: prediction {p['seconds']:.3f} s "
          f"(peak {p['peak_MiB']:.0f} MiB), Grad-CAM 4 volumes {p['gradcam_seconds']:.3f} s, "
          f"epoch of {t['patients']} patients {t['seconds']:.2f} s (peak {t['peak_MiB']:.0f} MiB)")
else:
    print("HARM3-Fusion: no result")
EOF
}

main() {
  local t0
  t0=$(date +%s)
  setup
  export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  if (( DRY )); then
    # the packages the GPU machine lacks (carried ones come from $SITE) are made unimportable
    local block=/tmp/gpu_figures_dry_block
    mkdir -p "$block"
    cat > "$block/sitecustomize.py" <<'EOF'
import sys

_MISSING = {"dask", "distributed", "nibabel", "pydicom", "lifelines", "sksurv", "tiffslide", "zarr", "numcodecs",
            "napari", "magicgui", "qtpy", "PyQt6", "PyQt5", "autograd", "autograd_gamma", "pypdfium2", "npe2"}


class _Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _MISSING:
            raise ModuleNotFoundError(f"No module named {name!r} (not on the GPU machine; blocked by DRY=1)")
        return None


sys.meta_path.insert(0, _Missing())
EOF
    export PYTHONPATH="$block:$PYTHONPATH"
    EXTRACT=(--dry --device cpu)
    CF=(--device cpu:0 --sizes 32,64 --dtypes fp32,bf16 --repeats 1 --threads 2)
    SCORES=(--device cpu:0 --sizes 64 --dtypes fp32 --repeats 1 --threads 2 --attention scores)
    HARM3=(--model harm3_fusion_tiny --device cpu --patients 8 --patches 200 --threads 2)
    CPU10=(--sizes 100 --threads 2)
    CPU35=(--sizes 300 --threads 2)
  else
    EXTRACT=(--device cuda)
    CF=(--device cuda --sizes 1000,10000,35000 --dtypes fp32,bf16 --repeats 3 --threads 0)
    SCORES=(--device cuda --sizes 35000 --dtypes fp32,bf16 --repeats 1 --threads 0 --attention scores)
    HARM3=(--model harm3_fusion --device cuda --patients 72 --patches 2000)
    CPU10=(--sizes 10000 --threads "$(nproc)")
    CPU35=(--sizes 35000 --threads "$(nproc)")
  fi
  if (( COMPILE )); then EXTRACT+=(--compile); fi
  check_imports
  SUMMARY+=("$(printf '%-40s rc %-4s %5s s' "0 set-up" "-" "$(( $(date +%s) - t0 ))")")

  step "1 extraction sweep" "$(cap 300 200)" "$PY" benchmarks/bench_extraction.py "${EXTRACT[@]}" --json "$OUT/extraction.json"
  step "2a CrossFusion GPU" "$(cap 150 120)" "$PY" benchmarks/bench_crossfusion.py "${CF[@]}" --json "$OUT/crossfusion_gpu.json"
  step "2b CrossFusion GPU attention=scores" "$(cap 90 100)" "$PY" benchmarks/bench_crossfusion.py "${SCORES[@]}" --json "$OUT/crossfusion_gpu_scores.json"
  step "3 HARM3-Fusion GPU" "$(cap 150 80)" "$PY" benchmarks/bench_harm3.py "${HARM3[@]}" --json "$OUT/harm3_gpu.json"
  local t
  t=$(cap 60 80)
  step "4a CrossFusion CPU 10k" "$(( t + 10 ))" "$PY" benchmarks/bench_crossfusion.py "${CPU10[@]}" --device cpu --timeout "$t" --json "$OUT/crossfusion_cpu10k.json"
  t=$(cap 600 35)
  if (( t >= 30 )); then
    step "4b CrossFusion CPU 35k" "$(( t + 10 ))" "$PY" benchmarks/bench_crossfusion.py "${CPU35[@]}" --device cpu --timeout "$t" --json "$OUT/crossfusion_cpu35k.json"
  else
    echo "4b CrossFusion CPU 35k: skipped, only ${t} s left"
  fi
  summary
  echo
  echo "steps:"
  printf '  %s\n' "${SUMMARY[@]}"
  echo "total $(elapsed) s of the ${BUDGET} s budget"
}

main 2>&1 | tee "$OUT/gpu_figures.log"
