#!/usr/bin/env bash
# GIN training throughput on a TU collection, scalegnn against PyG's DataLoader + GINConv
# (bench/pyg_graph.py), same model, batch and thread count, one session (issue 15's goal:
# >= 3x PyG's graphs/s). Prints one JSON line per implementation and the ratio.
#
#   bash bench/graph_throughput.sh [TU_DIR]      (default ../shared/datasets/tu/PROTEINS)
#
# Env: BIN, PY (the anchor venv's python, see ../shared/bench/setup_anchor.sh), WORK,
#      EPOCHS (timed epochs, default 10), THREADS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
TU=${1:-../shared/datasets/tu/PROTEINS}
BIN=${BIN:-target/release/scalegnn}
PY=${PY:-$HOME/.cache/scalegnn-anchor-venv/bin/python}
WORK=${WORK:-/tmp/scalegnn-graph-throughput}
EPOCHS=${EPOCHS:-10}
THREADS=${THREADS:-2}
[ -d "$TU" ] || { echo "skip: $TU is absent" >&2; exit 0; }
name=$(basename "$TU")
mkdir -p "$WORK"
ds="$WORK/ds-$name"
[ -f "$ds/manifest.json" ] || "$BIN" ingest --format tu "$TU" --out "$ds" >&2
run="$WORK/run-$name"
"$BIN" train "$ds" --model gin --layers 5 --hidden 64 --batch-norm true --dropout 0 \
    --readout sum --batch-size 32 --lr 0.01 --epochs $((EPOCHS + 1)) --cv 10 --runs 1 \
    --threads "$THREADS" --out "$run" --force >"$run.log" 2>&1
python3 - "$run" "$EPOCHS" <<'PY'
import json, sys
run, epochs = sys.argv[1], int(sys.argv[2])
lines = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
# The training pass's graphs per second of its wall time (validation excluded); every epoch
# trains the same graphs, so the harmonic mean is graphs over total time. Epoch 1 warms up.
rate = {l["epoch"]: l["value"] for l in lines if l["split"] == "train" and l["metric"] == "seeds_per_s"}
timed = [rate[e] for e in sorted(rate) if e > 1]
g = len(timed) / sum(1 / r for r in timed)
print(json.dumps({"impl": "scalegnn", "graphs_per_s": round(g, 1), "epochs": len(timed)}))
PY
"$PY" bench/pyg_graph.py --tu "$TU" --work "$WORK/pyg" --epochs "$EPOCHS" --threads "$THREADS"
