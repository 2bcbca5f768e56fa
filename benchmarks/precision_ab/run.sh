#!/usr/bin/env bash
# A/B of the training precision paths of the progressive recipe at each step: fp32 NCHW against
# bf16 autocast + channels_last, same seed, same data order, same iterations; prints val PSNR
# and s/iteration of each (issue 8: the fast path must agree within 0.05 dB).
# Usage: benchmarks/precision_ab/run.sh FACES_DIR OUT_DIR [ITERATIONS] [THREADS] [INIT]
# With INIT (a generator file, e.g. the shipped ours weights) only step 3 is compared, both
# paths fine-tuning from it at lr 1e-4: from a random start, 50 iterations leave the two runs
# on different trajectories, so their val PSNR differs by chance, not by precision.
set -euo pipefail
FACES=${1:?faces dir (holds train/ and val/)}
OUT=${2:?output dir}
N=${3:-150}
THREADS=${4:-2}
INIT=${5:-}
STEPS="1 2 3"
EXTRA=()
if [ -n "$INIT" ]; then
  STEPS=3
  EXTRA=(--set "options.init_generator=\"$INIT\"" --set options.progressive=false --set options.lr=1e-4)
fi
export OMP_NUM_THREADS=$THREADS
for step in $STEPS; do
  iterations=$(python -c "print([[$N], [1, $N], [1, 1, $N]][$step - 1] if not '$INIT' else [$N])")
  for path in fp32:false bf16:true; do
    name=${path%%:*}; on=${path##*:}
    progface train --data "$FACES/train/celeba" --val "$FACES/val/celeba_heldout_ids" \
      --out "$OUT/step$step-$name" --set options.perceptual=false \
      --set 'losses.adversarial=[0.0,0.0,0.0]' --set "options.iterations=$iterations" \
      --set 'options.fade=[0.0,0.0,0.0]' --set options.attention_source=landmarks \
      --set data.landmarks=true --set options.heatmap_source_options.work_size=64 \
      --set loop.bf16=$on --set loop.channels_last=$on --set loop.threads=$THREADS \
      --set data.workers=1 --set data.val_limit=100 --set loop.val_every=0 \
      --set loop.checkpoint_every=0 --set loop.log_every=$N --set loop.progress=false "${EXTRA[@]}"
  done
done
python - "$OUT" "$N" "$STEPS" <<'PY'
import json, sys
from pathlib import Path
out, n, steps = Path(sys.argv[1]), int(sys.argv[2]), [int(x) for x in sys.argv[3].split()]
print("| step | path | s / iteration | val PSNR (dB) | val SSIM |")
print("|---:|---|---:|---:|---:|")
for step in steps:
    rows = {}
    for name in ("fp32", "bf16"):
        recs = [json.loads(l) for l in (out / f"step{step}-{name}" / "metrics.jsonl").open()]
        train = [r for r in recs if r["kind"] == "train" and r["iteration"] == n][0]
        val = [r for r in recs if r["kind"] == "val"][-1]
        rows[name] = val["psnr"]
        label = "fp32 NCHW" if name == "fp32" else "bf16 autocast + channels_last"
        print(f"| {step} | {label} | {train['sec_per_it']:.2f} | {val['psnr']:.3f} | {val['ssim']:.4f} |")
    print(f"|  | difference |  | {rows['bf16'] - rows['fp32']:+.3f} |  |")
PY
