#!/usr/bin/env bash
# Link prediction with the GAE protocol (Kipf & Welling 2016): for each seed, a fresh random
# 85/5/10 split of the undirected edges with as many fixed negatives as positives
# (`scalegnn split-edges --seed S`), then one training run on it; test ROC-AUC and AP of the
# checkpoint chosen on validation ROC-AUC, mean ± std over the seeds.
#   bash bench/link_gae.sh [GRAPH ...]   (default: cora citeseer; folders of
#                                          ../shared/datasets/planetoid-npy/ or npz-npy/,
#                                          such as amazon-photo)
# Env: SEEDS (default 10), MODELS (default "gcn sage gat"), FLAGS (the recipe, default GAE's:
#      hidden 32, dropout 0, no weight decay, lr 0.01, 200 epochs, raw features),
#      TUNE (default 0): when N > 0, each model's lr, weight decay, dropout and hidden width
#      are first chosen by `train --tune N` on the validation pairs of the seed-0 split (the
#      defaults, then a seeded random search; FLAGS as the base, default 200 epochs, raw
#      features), and used for every seed.
#      WORK (default /tmp/scalegnn-link), SHARED (default ../shared),
#      BIN (default: target/release/scalegnn, built first).
# Prints one JSON line per (graph, model).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/scalegnn-link}
SHARED=${SHARED:-../shared}
SEEDS=${SEEDS:-10}
MODELS=${MODELS:-gcn sage gat}
# The search chooses the four knobs itself, so a tuned bench's base recipe leaves them out.
if [ "${TUNE:-0}" -gt 0 ]; then
  FLAGS=${FLAGS:---epochs 200 --normalize-features false}
else
  FLAGS=${FLAGS:---hidden 32 --dropout 0 --weight-decay 0 --lr 0.01 --epochs 200 --normalize-features false}
fi
GRAPHS=("$@")
[ ${#GRAPHS[@]} -gt 0 ] || GRAPHS=(cora citeseer)
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/scalegnn
fi
mkdir -p "$WORK"
read -r -a RECIPE <<< "$FLAGS"
for G in "${GRAPHS[@]}"; do
  SRC="$SHARED/datasets/planetoid-npy/$G"
  [ -d "$SRC" ] || SRC="$SHARED/datasets/npz-npy/$G"
  [ -d "$SRC" ] || { echo "skip $G: $SRC is missing" >&2; continue; }
  DS="$WORK/ds-$G"
  [ -f "$DS/manifest.json" ] || "$BIN" ingest --format npy "$SRC" --out "$DS" --force > /dev/null 2>&1
  for M in $MODELS; do
    CHOSEN=()
    if [ "${TUNE:-0}" -gt 0 ]; then
      "$BIN" split-edges "$DS" --seed 0 --force > /dev/null
      "$BIN" train "$DS" --task link --model "$M" "${RECIPE[@]}" --tune "$TUNE" --runs 1 \
        --out "$WORK/tune-$G-$M" --force > "$WORK/log-tune-$G-$M.txt" 2>&1
      CHOSEN_TEXT=$(python3 - "$WORK/tune-$G-$M/tune.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
v = t["trials"][t["chosen"]]["values"]
print(" ".join("--%s %s" % (k.replace("_", "-"), x) for k, x in v.items()))
PY
)
      read -r -a CHOSEN <<< "$CHOSEN_TEXT"
      [ ${#CHOSEN[@]} -gt 0 ] || { echo "no knobs chosen in $WORK/tune-$G-$M" >&2; exit 1; }
    fi
    for S in $(seq 0 $((SEEDS - 1))); do
      "$BIN" split-edges "$DS" --seed "$S" --force > /dev/null
      "$BIN" train "$DS" --task link --model "$M" "${RECIPE[@]}" "${CHOSEN[@]}" --seed "$S" \
        --out "$WORK/run-$G-$M-$S" --force > "$WORK/log-$G-$M-$S.txt" 2>&1
    done
    python3 - "$G" "$M" "$WORK" "$SEEDS" "${CHOSEN[*]:-}" <<'PY'
import json, statistics as st, sys
g, m, work, seeds, chosen = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
res = {"roc_auc": [], "ap": [], "val_roc_auc": []}
for s in range(seeds):
    last = {}
    for line in open(f"{work}/run-{g}-{m}-{s}/metrics.jsonl"):
        l = json.loads(line)
        if l["split"] == "test":
            last[l["metric"]] = l["value"]
    res["roc_auc"].append(100 * last["roc_auc"])
    res["ap"].append(100 * last["ap"])
    res["val_roc_auc"].append(100 * json.load(open(f"{work}/run-{g}-{m}-{s}/summary.json"))["per_run"][0]["best_val"])
cpu = open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].split('\n')[0].strip()
out = {"graph": g, "model": m, "seeds": seeds, "tuned": chosen}
for k, v in res.items():
    out[k] = round(st.mean(v), 2)
    out[k + "_std"] = round(st.pstdev(v), 2)
out["cpu"] = cpu
print(json.dumps(out))
PY
  done
done
