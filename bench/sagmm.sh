#!/usr/bin/env bash
# SAGMM table of docs/sagmm.md: SAGMM against each expert trained alone (same hidden size and
# epochs), noisy top-k gating, no pruning, identical experts and SAGMM-PE; 5 seeds each, test
# accuracy at the best validation epoch. One markdown row per variant.
#   bash bench/sagmm.sh DATASET_NAME [VARIANTS...]
#   DATASET_NAME: cora | citeseer (public split, seeds 0-4) | photo (splits 0-4) |
#                 hetero (synthetic small preset, --homophily 0.2; see HETERO_* below)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
WORK=${WORK:-/tmp/scalegnn-accuracy}
THREADS=${THREADS:-2}
SEEDS=${SEEDS:-5}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/scalegnn
fi
name=${1:?dataset: cora, citeseer, photo or hetero}
shift
mkdir -p "$WORK"
case $name in
  cora|citeseer)
    [ -d "$WORK/$name" ] || "$BIN" ingest --format npy "$SHARED/datasets/planetoid-npy/$name" --out "$WORK/$name" >/dev/null
    FLAGS="--hidden 64 --dropout 0.5 --lr 0.01 --weight-decay 5e-4 --epochs 200" ;;
  photo)
    for s in $(seq 0 $((SEEDS - 1))); do
      [ -d "$WORK/photo-$s" ] || "$BIN" ingest --format npz "$SHARED/datasets/npz/amazon_electronics_photo.npz" \
        --undirected --remove-self-loops --split per-class:20,30 --seed "$s" --out "$WORK/photo-$s" >/dev/null
    done
    FLAGS="--hidden 64 --dropout 0.5 --lr 0.01 --weight-decay 5e-5 --epochs 200 --normalize-features false" ;;
  hetero)
    # The small preset's 100k nodes cost ~4.4 s per SAGMM epoch on 2 cores; the table uses
    # the same generator at HETERO_NODES nodes (average degree kept at 20).
    N=${HETERO_NODES:-10000}
    [ -d "$WORK/hetero-$N" ] || "$BIN" synth --preset small --homophily 0.2 --nodes "$N" --edges $((N * 20)) \
      --seed 0 --out "$WORK/hetero-$N" >/dev/null
    FLAGS="--hidden 64 --dropout 0.5 --lr 0.01 --weight-decay 5e-4 --epochs ${HETERO_EPOCHS:-100}" ;;
  *) echo "unknown dataset $name" >&2; exit 2 ;;
esac

variant_flags() {
  case $1 in
    sagmm) echo "" ;;
    gcn|gat|sage|sgc|jk|cheb|gin|mixhop) echo "--expert-pool $1" ;;
    top1|top2) echo "--gate $1" ;;
    no-prune) echo "--prune false" ;;
    unchecked) echo "--prune-tolerance 1" ;;
    identical) echo "--identical-experts true" ;;
    pe) echo "--pretrain-experts true" ;;
    xl*) echo "--expert-loss ${1#xl}" ;;  # e.g. xl1: expert supervision with weight 1
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}

variants=${*:-sagmm gcn gat sage sgc jk cheb gin mixhop top1 top2 no-prune identical pe}
echo "| $name | test acc (${SEEDS} seeds) | params (end) | inference ms (epoch 2 → end) | train s |"
echo "|---|---|---|---|---|"
for v in $variants; do
  out="$WORK/sagmm-$name-$v"
  rm -rf "$out"
  mkdir -p "$out"
  extra=$(variant_flags "$v")
  if [ "$name" = photo ]; then
    for s in $(seq 0 $((SEEDS - 1))); do
      "$BIN" --threads "$THREADS" train "$WORK/photo-$s" --model sagmm $FLAGS $extra --seed "$s" --out "$out/split-$s" >/dev/null
    done
  else
    d="$WORK/$name"; [ "$name" = hetero ] && d="$WORK/hetero-${HETERO_NODES:-10000}"
    "$BIN" --threads "$THREADS" train "$d" --model sagmm $FLAGS $extra --runs "$SEEDS" --out "$out/runs" >/dev/null
  fi
  echo "| $v | $(python3 bench/sagmm_summary.py "$out") |"
done
