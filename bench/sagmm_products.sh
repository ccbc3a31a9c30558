#!/usr/bin/env bash
# SAGMM on the products preset, mini-batch (fan-outs 10,5,2, loss on the seeds only), against
# single experts and without pruning; SEEDS seeds (default 1: seed 0), EPOCHS epochs of at
# most MAX_BATCHES batches,
# validation/test on a fixed subset of EVAL_MAX nodes (sampled with the same fan-outs).
#   bash bench/sagmm_products.sh DATASET_DIR [VARIANTS...]   (default variants: see below)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN=${BIN:-target/release/scalegnn}
THREADS=${THREADS:-2}
D=${1:?products dataset directory (scalegnn synth --preset products)}
shift
WORK=${WORK:-/tmp/scalegnn-sagmm-products}
mkdir -p "$WORK"
COMMON="--loader neighbor --fanouts 10,5,2 --layers 3 --batch-size 1024 --hidden ${HIDDEN:-64}
  --lr 0.003 --dropout 0.5 --weight-decay 0 --epochs ${EPOCHS:-3} --max-batches ${MAX_BATCHES:-60}
  --eval-max ${EVAL_MAX:-10000} --prune-interval 1 --store mmap --codec f32"
variants=${*:-sagmm no-prune gcn sage gat}
echo "| products | test acc | params (end) | val pass ms (epoch 2 → end) | train s |"
echo "|---|---|---|---|---|"
for v in $variants; do
  case $v in
    sagmm) extra="" ;;
    no-prune) extra="--prune false" ;;
    pe) extra="--pretrain-experts true" ;;
    top1|top2) extra="--gate $v" ;;
    *) extra="--expert-pool $v" ;;
  esac
  out="$WORK/$v"
  rm -rf "$out"
  start=$(date +%s.%N)
  for s in $(seq 0 $((${SEEDS:-1} - 1))); do
    "$BIN" --threads "$THREADS" train "$D" --model sagmm $COMMON $extra --seed "$s" \
      --out "$out/seed-$s" >/dev/null
  done
  end=$(date +%s.%N)
  row=$(python3 bench/sagmm_summary.py "$out")
  # Mini-batch runs have no train_s line: the wall time of the whole run (per seed) stands in.
  echo "| $v | ${row% | *} | $(python3 -c "print(f'{($end - $start) / ${SEEDS:-1}:.0f}')") |"
done
