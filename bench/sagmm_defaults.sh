#!/usr/bin/env bash
# How SAGMM's defaults are chosen: each variant (a set of flags) trains RUNS runs (seeds, and
# the official splits where a graph has several) on every graph, and is scored by its mean
# best VALIDATION accuracy only; the last line gives each variant's mean over the graphs.
# No test figure is read.
#   bash bench/sagmm_defaults.sh "base:" "mlp:--expert-pool gcn,gat,sage,sgc,jk,cheb,gin,mixhop,mlp"
# Env: GRAPHS (default "texas cornell wisconsin syn0.1 syn0.5 cora citeseer"; synH as in
#      bench/tune_compare.sh), RUNS (default 3), WORK (default /tmp/scalegnn-sagmm-defaults),
#      SHARED (default ../shared), BIN (default: target/release/scalegnn, built first).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/scalegnn-sagmm-defaults}
SHARED=${SHARED:-../shared}
RUNS=${RUNS:-3}
GRAPHS=${GRAPHS:-texas cornell wisconsin syn0.1 syn0.5 cora citeseer}
[ $# -gt 0 ] || { echo "usage: $0 NAME:FLAGS ..." >&2; exit 2; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/scalegnn
fi
mkdir -p "$WORK"
# shellcheck source=bench/graphs.sh
source bench/graphs.sh
for G in $GRAPHS; do
  DS="$WORK/ds-$G"
  prepare_graph "$G" || continue
  for V in "$@"; do
    NAME=${V%%:*}
    read -r -a FLAGS <<< "${V#*:}"
    OUT="$WORK/run-$G-$NAME"
    "$BIN" train "$DS" --model sagmm "${FLAGS[@]}" --runs "$RUNS" --out "$OUT" --force \
      > "$WORK/log-$G-$NAME.txt" 2>&1 || { echo "{\"graph\":\"$G\",\"variant\":\"$NAME\",\"error\":true}"; continue; }
    python3 - "$G" "$NAME" "$OUT" <<'PY'
import json, sys
g, name, out = sys.argv[1:4]
s = json.load(open(f"{out}/summary.json"))
vals = [r["best_val"] for r in s["per_run"]]
print(json.dumps({"graph": g, "variant": name, "val_mean": round(100 * sum(vals) / len(vals), 2),
                  "runs": len(vals)}))
PY
  done
done | tee "$WORK/lines.jsonl"
python3 - "$WORK/lines.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"val_mean"' in l]
by = {}
for r in rows:
    by.setdefault(r["variant"], []).append(r["val_mean"])
print(json.dumps({"mean_val_over_graphs": {v: round(sum(x) / len(x), 2) for v, x in by.items()},
                  "graphs": {v: len(x) for v, x in by.items()}}))
PY
