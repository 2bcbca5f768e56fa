#!/usr/bin/env bash
# A/B of the training precision paths of the progressive recipe at each step: fp32 NCHW against
# bf16 autocast + channels_last, same seed, same data order, same iterations; prints val PSNR
# and s/iteration of each (issue 8: the fast path must agree within 0.05 dB).
# Usage: benchmarks/precision_ab/run.sh FACES_DIR OUT_DIR [ITERATIONS] [THREADS]
set -euo pipefail
FACES=${1:?faces dir (holds train/ and val/)}
OUT=${2:?output dir}
N=${3:-150}
THREADS=${4:-2}
export OMP_NUM_THREADS=$THREADS
for step in 1 2 3; do
  iterations=$(python -c "print([[$N], [1, $N], [1, 1, $N]][$step - 1])")
  for path in fp32:false bf16:true; do
    name=${path%%:*}; on=${path##*:}
    progface train --data "$FACES/train/celeba" --val "$FACES/val/celeba_heldout_ids" \
      --out "$OUT/step$step-$name" --set options.perceptual=false \
      --set 'options.weights.adversarial=[0.0,0.0,0.0]' --set "options.iterations=$iterations" \
      --set 'options.fade=[0.0,0.0,0.0]' --set options.attention_source=landmarks \
      --set data.landmarks=true --set options.heatmap_source_options.work_size=64 \
      --set loop.bf16=$on --set loop.channels_last=$on --set loop.threads=$THREADS \
      --set data.workers=1 --set data.val_limit=100 --set loop.val_every=0 \
      --set loop.checkpoint_every=0 --set loop.log_every=$N --set loop.progress=false
  done
done
python - "$OUT" "$N" <<'PY'
import json, sys
from pathlib import Path
out, n = Path(sys.argv[1]), int(sys.argv[2])
print("| step | path | s / iteration | val PSNR (dB) | val SSIM |")
print("|---:|---|---:|---:|---:|")
for step in (1, 2, 3):
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
