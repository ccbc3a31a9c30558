#!/usr/bin/env bash
# Mini-batch GraphSAGE (3 x 256, mean, fan-outs 15,10,5, batch 1024, Adam lr 0.003, 2 threads):
# scalegnn vs the PyG anchor on the same make_synth directory, one after the other in this
# session; prints both JSON-lines files and ../shared/bench/ratio.py.
#   bash bench/minibatch.sh [DATASET_DIR]      (default /work/synth/products; small is faster)
# PyG runs twice: its strongest set-up (--mfg, layer-wise NeighborSampler: train seeds/s and
# peak RSS, the targets' reference) and its NeighborLoader phases (sampler-only and
# sampling + gather seeds/s). scalegnn runs `scalegnn profile` (same phases, same names).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
PY=${ANCHOR_VENV:-$HOME/.cache/scalegnn-anchor-venv}/bin/python
DATA=${1:-/work/synth/products}
WORK=${WORK:-/tmp/scalegnn-minibatch}
THREADS=${THREADS:-2}
BATCHES=${BATCHES:-20}
WARMUP=${WARMUP:-3}
[ -x "$PY" ] || { echo "anchor venv missing: run bash $SHARED/bench/setup_anchor.sh"; exit 1; }
[ -d "$DATA" ] || { echo "no dataset at $DATA: $PY $SHARED/bench/make_synth.py --preset products --out $DATA"; exit 1; }
cargo build --release --quiet
BIN=target/release/scalegnn
mkdir -p "$WORK"
rm -f "$WORK/pyg.jsonl" "$WORK/scalegnn.jsonl"
COMMON=(--batch-size 1024 --fanouts 15,10,5 --hidden 256 --lr 0.003 --dropout 0.5 --threads "$THREADS")
"$PY" "$SHARED/bench/pyg_anchor.py" "$DATA" "${COMMON[@]}" --mfg --skip sampler,loader \
  --batches "$BATCHES" --warmup "$WARMUP" --jsonl "$WORK/pyg.jsonl" >/dev/null
"$PY" "$SHARED/bench/pyg_anchor.py" "$DATA" "${COMMON[@]}" --skip train \
  --batches "$BATCHES" --warmup "$WARMUP" --jsonl "$WORK/pyg-loader.jsonl" >/dev/null
# The loader run's peak RSS and load time are not the --mfg figures: keep only its phases.
grep -E '"(sampler|sample|sampled)_' "$WORK/pyg-loader.jsonl" >>"$WORK/pyg.jsonl"
rm -f "$WORK/pyg-loader.jsonl"
"$BIN" --threads "$THREADS" profile "$DATA" --no-verify --model sage --layers 3 --hidden 256 \
  --fanouts 15,10,5 --batch-size 1024 --lr 0.003 --dropout 0.5 --input-dropout 0 \
  --batches "$BATCHES" --warmup "$WARMUP" --jsonl "$WORK/scalegnn.jsonl" >/dev/null
python3 "$SHARED/bench/ratio.py" "$WORK/scalegnn.jsonl" "$WORK/pyg.jsonl"
