#!/usr/bin/env bash
# Full-batch GCN (2 x 16, 200 epochs) speed and accuracy: scalegnn vs the PyG anchor
# (../shared/bench/pyg_anchor.py --full-batch) on the same data, 2 threads each, one after
# the other in this session; prints both JSON-lines files and ../shared/bench/ratio.py.
#   bash bench/fullbatch.sh            (needs ../shared/bench/setup_anchor.sh done once)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
PY=${ANCHOR_VENV:-$HOME/.cache/scalegnn-anchor-venv}/bin/python
WORK=${WORK:-/tmp/scalegnn-fullbatch}
THREADS=${THREADS:-2}
[ -x "$PY" ] || { echo "anchor venv missing: run bash $SHARED/bench/setup_anchor.sh"; exit 1; }
cargo build --release --quiet
BIN=target/release/scalegnn
mkdir -p "$WORK"
rm -f "$WORK/pyg.jsonl" "$WORK/scalegnn.jsonl"
[ -d "$WORK/small" ] || "$PY" "$SHARED/bench/make_synth.py" --preset small --out "$WORK/small"
[ -d "$WORK/small-ei" ] || "$PY" bench/to_edge_index.py "$WORK/small" "$WORK/small-ei"

declare -A DIRS=(
  [cora]="$SHARED/datasets/planetoid-npy/cora"
  [citeseer]="$SHARED/datasets/planetoid-npy/citeseer"
  [amazon-photo]="$SHARED/datasets/npz-npy/amazon-photo"
  [small]="$WORK/small-ei"
)
for name in cora citeseer amazon-photo small; do
  dir=${DIRS[$name]}
  "$PY" "$SHARED/bench/pyg_anchor.py" --full-batch "$dir" --threads "$THREADS" --name "$name" --jsonl "$WORK/pyg.jsonl" >/dev/null
  "$BIN" ingest --format npy "$dir" --out "$WORK/sg-$name" --force >/dev/null
  rm -rf "$WORK/run-$name"
  "$BIN" --threads "$THREADS" train "$WORK/sg-$name" --model gcn --epochs 200 --out "$WORK/run-$name" >/dev/null
  python3 - "$WORK/run-$name/summary.json" "$name" "$THREADS" >>"$WORK/scalegnn.jsonl" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
base = {"engine": "scalegnn", "dataset": sys.argv[2], "threads": int(sys.argv[3]), "model": "gcn2x16", "epochs": 200}
print(json.dumps({"metric": "gcn_epoch_ms", "value": s["epoch_ms_mean"], "unit": "ms", **base}))
print(json.dumps({"metric": "gcn_test_acc", "value": s.get("test_mean", s.get("test_acc_mean")), "unit": "fraction", **base}))
PYEOF
done
cat "$WORK/scalegnn.jsonl"
python3 "$SHARED/bench/ratio.py" "$WORK/scalegnn.jsonl" "$WORK/pyg.jsonl"
