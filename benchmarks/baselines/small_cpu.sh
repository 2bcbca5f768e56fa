#!/usr/bin/env bash
# Small-scale CPU recipe: train vdsr and urdgn (preset "small", one thread, ~25 min each on one
# busy core), then bench them with bilinear and bicubic on 200 held-out faces in the paper's
# Table 3 layout. Usage: benchmarks/baselines/small_cpu.sh [FACES_DIR] [OUT_DIR]
set -euo pipefail
FACES=${1:-/work/shared/data/faces}
OUT=${2:-runs}
export OMP_NUM_THREADS=1
for recipe in vdsr urdgn; do
  nice -n 5 progface train --recipe "$recipe" --preset small --data "$FACES/train/celeba" \
    --val "$FACES/val/celeba_heldout_ids" --out "$OUT/small-$recipe"
done
progface bench --data "$FACES/val/celeba_heldout_ids" --limit 200 --table3 aligned \
  --methods bilinear,bicubic,vdsr,urdgn \
  --weights "vdsr=$OUT/small-vdsr/weights.safetensors" \
  --weights "urdgn=$OUT/small-urdgn/weights.safetensors" \
  --device cpu --out "$OUT/small-table3"
