#!/usr/bin/env bash
# SAGMM against the standalone models, every one tuned with the same budget on validation
# (--tune TRIALS: the defaults, then a seeded random search), then RUNS runs (seeds, and the
# official splits where a graph has several), test accuracy mean ± std.
#   bash bench/tune_compare.sh [GRAPH ...]   (default: texas cornell wisconsin cora citeseer)
# A GRAPH is a folder of ../shared/datasets/planetoid-npy/, or synH: `scalegnn synth` with
# homophily H (4,000 nodes, 40,000 directed edges, seed 0), e.g. syn0.1.
# MODELS: registry models, and sagmm-pub: SAGMM as described (--expert-loss 0
# --best-expert false).
# Env: TRIALS (default 10), RUNS (default 5), MODELS (default "gcn sage gat mlp sagmm"),
#      WORK (default /tmp/scalegnn-tune-compare), SHARED (default ../shared),
#      BIN (default: target/release/scalegnn, built first).
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
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/scalegnn
fi
mkdir -p "$WORK"
# shellcheck source=bench/graphs.sh
source bench/graphs.sh
for G in "${GRAPHS[@]}"; do
  DS="$WORK/ds-$G"
  prepare_graph "$G" || continue
  for M in $MODELS; do
    OUT="$WORK/run-$G-$M"
    T0=$(date +%s)
    FLAGS=(--model "$M")
    [ "$M" = sagmm-pub ] && FLAGS=(--model sagmm --expert-loss 0 --best-expert false)
    "$BIN" train "$DS" "${FLAGS[@]}" --tune "$TRIALS" --runs "$RUNS" --out "$OUT" --force \
      > "$WORK/log-$G-$M.txt" 2>&1 || { echo "{\"graph\":\"$G\",\"model\":\"$M\",\"error\":true}"; continue; }
    python3 - "$G" "$M" "$OUT" "$(( $(date +%s) - T0 ))" <<'PY'
import glob, json, sys
g, m, out, secs = sys.argv[1:5]
# SAGMM runs that ended on one expert (the final checked pruning), and which.
chose = []
for f in sorted(glob.glob(f"{out}/run-*/metrics.jsonl")):
    for line in open(f):
        l = json.loads(line)
        if l.get("metric") == "best_expert":
            chose.append(int(l["value"]))
s = json.load(open(f"{out}/summary.json"))
t = json.load(open(f"{out}/tune.json"))
best = t["trials"][t["chosen"]]
cpu = open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].split('\n')[0].strip()
print(json.dumps({"graph": g, "model": m, "test_mean": round(100 * s["test_mean"], 2),
                  "test_std": round(100 * s["test_std"], 2), "val_chosen": round(100 * best["val"], 2),
                  "chosen": best["values"], "trial": t["chosen"] + 1, "trials": len(t["trials"]),
                  "runs": s["runs"], "best_expert_runs": chose, "wall_s": int(secs), "cpu": cpu}))
PY
  done
done
