#!/usr/bin/env bash
# SAGMM against the standalone models, every one tuned with the same budget on validation
# (--tune TRIALS: the defaults, then a seeded random search), then RUNS runs (seeds, and the
# official splits where a graph has several), test accuracy mean ± std.
#   bash bench/tune_compare.sh [GRAPH ...]   (default: texas cornell wisconsin cora citeseer)
# Env: TRIALS (default 10), RUNS (default 5), MODELS (default "gcn sage gat mlp sagmm"),
#      WORK (default /tmp/scalegnn-tune-compare), SHARED (default ../shared).
# Prints one JSON line per (graph, model): test mean/std, chosen knobs, validation figure.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/scalegnn-tune-compare}
SHARED=${SHARED:-../shared}
TRIALS=${TRIALS:-10}
RUNS=${RUNS:-5}
MODELS=${MODELS:-gcn sage gat mlp sagmm}
GRAPHS=("$@")
[ ${#GRAPHS[@]} -gt 0 ] || GRAPHS=(texas cornell wisconsin cora citeseer)
cargo build --release --quiet
BIN=$PWD/target/release/scalegnn
mkdir -p "$WORK"
for G in "${GRAPHS[@]}"; do
  SRC="$SHARED/datasets/planetoid-npy/$G"
  if [ ! -d "$SRC" ]; then
    echo "skip $G: $SRC is missing" >&2
    continue
  fi
  DS="$WORK/ds-$G"
  [ -f "$DS/manifest.json" ] || "$BIN" ingest --format npy "$SRC" --out "$DS" --force > /dev/null
  for M in $MODELS; do
    OUT="$WORK/run-$G-$M"
    "$BIN" train "$DS" --model "$M" --tune "$TRIALS" --runs "$RUNS" --out "$OUT" --force \
      > "$WORK/log-$G-$M.txt" 2>&1 || { echo "{\"graph\":\"$G\",\"model\":\"$M\",\"error\":true}"; continue; }
    python3 - "$G" "$M" "$OUT" <<'PY'
import json, sys
g, m, out = sys.argv[1:4]
s = json.load(open(f"{out}/summary.json"))
t = json.load(open(f"{out}/tune.json"))
best = t["trials"][t["chosen"]]
cpu = open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].split('\n')[0].strip()
print(json.dumps({"graph": g, "model": m, "test_mean": round(100 * s["test_mean"], 2),
                  "test_std": round(100 * s["test_std"], 2), "val_chosen": round(100 * best["val"], 2),
                  "chosen": best["values"], "trial": t["chosen"] + 1, "trials": len(t["trials"]),
                  "runs": s["runs"], "cpu": cpu}))
PY
  done
done
