#!/usr/bin/env bash
# Link training on sampled batches, in memory and out of core, against PyG's
# LinkNeighborLoader (bench/pyg_link.py) on the same dataset directory and edge split, one
# after the other in one session. Same set-up on both sides: GraphSAGE 3 x HIDDEN, fan-outs
# 15,10,5, 1024 positive pairs per batch, one uniform negative per positive, dot decoder, BCE,
# Adam, THREADS threads.
#   bash bench/link_outofcore.sh DATASET_DIR   (a scalegnn dataset with an edge split:
#                                               scalegnn synth --preset products, then
#                                               scalegnn split-edges DIR --seed 0)
# Runs:
#   pyg-mfg   bench/pyg_link.py --mfg: BATCHES timed batches after WARMUP untimed ones, on
#             PyG's layer-wise NeighborSampler blocks (PyG's fastest CPU set-up);
#   pyg       the same without trimming (PyG's default: every layer on every sampled node);
#   mem       scalegnn, the mmap store through the page cache (features fit in memory);
#   ooc       scalegnn, the mmap store read with direct I/O (no page cache) under
#             --mem-budget BUDGET: by default what one batch needs (buffers, activations,
#             model) plus a quarter of the feature file, so the cache holds at most a quarter
#             of the features.
# scalegnn runs 2 epochs of BATCHES batches and reports the second (the first warms up);
# validation on EVAL_MAX pairs. The page cache is dropped before each run when we may.
# Peak RSS: VmHWM of the process, polled (file-backed mmap pages included).
# Env: PY (the anchor venv's python), BATCHES (50), WARMUP (5), THREADS (2), HIDDEN (256),
#      BUDGET (bytes; default: see ooc), EVAL_MAX (2000), RUNS ("pyg-mfg mem ooc"),
#      WORK (/tmp/scalegnn-link-ooc), BIN (default: target/release/scalegnn, built first).
# Prints one JSON line per run: pairs_per_s, peak_rss_mib.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:?dataset dir with an edge split}
PY=${PY:-$HOME/.cache/scalegnn-anchor-venv/bin/python}
BATCHES=${BATCHES:-50}
WARMUP=${WARMUP:-5}
THREADS=${THREADS:-2}
HIDDEN=${HIDDEN:-256}
EVAL_MAX=${EVAL_MAX:-2000}
RUNS=${RUNS:-pyg-mfg mem ooc}
WORK=${WORK:-/tmp/scalegnn-link-ooc}
[ -f "$DATA/link_train_pos.npy" ] || { echo "$DATA has no edge split (scalegnn split-edges)"; exit 1; }
[ -f "$DATA/x.npy" ] || { echo "$DATA has no x.npy"; exit 1; }
FEAT_BYTES=$(stat -c %s "$DATA/x.npy")
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/scalegnn
fi
mkdir -p "$WORK"
SAGE=(--task link --model sage --layers 3 --loader neighbor --fanouts 15,10,5 --batch-size 1024
  --hidden "$HIDDEN" --lr 0.003 --dropout 0.5 --exclude-targets false --store mmap --codec f32)
if [ -z "${BUDGET:-}" ]; then
  # The budget covers one batch's buffers and activations too: ask the run what those need
  # (it refuses a budget of one byte and names its minimum), then add a quarter of the
  # feature file for the cache.
  "$BIN" --threads "$THREADS" train "$DATA" "${SAGE[@]}" --direct-io true --mem-budget 1 \
    --epochs 1 --max-batches 1 --out "$WORK/probe" --force > "$WORK/probe.log" 2>&1 || true
  MIN_MIB=$(grep -o 'use at least [0-9]*MiB' "$WORK/probe.log" | grep -o '[0-9]*' || true)
  [ -n "$MIN_MIB" ] || { echo "could not read the minimum budget from $WORK/probe.log" >&2; exit 1; }
  BUDGET=$((MIN_MIB * 1048576 + FEAT_BYTES / 4))
fi

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

# Runs "$@" in the background, its output into the file $1, and prints its peak RSS in MiB
# (VmHWM, polled) when it ends; fails when the command does.
peak_rss() {
  local log=$1
  shift
  "$@" > "$log" 2>&1 &
  local pid=$! hwm=0 h
  while kill -0 $pid 2>/dev/null; do
    h=$(awk '/VmHWM/{print $2}' /proc/$pid/status 2>/dev/null || echo 0)
    [ "${h:-0}" -gt "$hwm" ] && hwm=$h
    sleep 0.2
  done
  wait $pid
  echo $((hwm / 1024))
}

# The second epoch's positive pairs per second from a run directory's metrics.jsonl.
epoch2_rate() {
  python3 - "$1/metrics.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("epoch") == 2 and m.get("split") == "train" and m.get("metric") == "seeds_per_s":
        print(f"{m['value']:.1f}")
PY
}

for R in $RUNS; do
  drop_caches
  case $R in
    pyg|pyg-mfg)
      trim=()
      [ "$R" = pyg-mfg ] && trim=(--mfg)
      rss=$(peak_rss "$WORK/$R.jsonl" "$PY" bench/pyg_link.py "$DATA" --batches "$BATCHES" \
        --warmup "$WARMUP" --threads "$THREADS" --hidden "$HIDDEN" "${trim[@]}")
      rate=$(python3 - "$WORK/$R.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if line.startswith("{") and json.loads(line).get("metric") == "train_edges_per_s":
        print(f"{json.loads(line)['value']:.1f}")
PY
)
      ;;
    mem|ooc)
      extra=()
      [ "$R" = ooc ] && extra=(--direct-io true --mem-budget "$BUDGET")
      rm -rf "$WORK/run-$R"
      rss=$(peak_rss "$WORK/$R.log" "$BIN" --threads "$THREADS" train "$DATA" "${SAGE[@]}" \
        --epochs 2 --max-batches "$BATCHES" --eval-max "$EVAL_MAX" "${extra[@]}" \
        --out "$WORK/run-$R")
      rate=$(epoch2_rate "$WORK/run-$R")
      ;;
    *) echo "unknown run $R" >&2; exit 1 ;;
  esac
  echo "{\"run\": \"$R\", \"pairs_per_s\": $rate, \"peak_rss_mib\": $rss, \"threads\": $THREADS, \"budget_bytes\": $([ "$R" = ooc ] && echo "$BUDGET" || echo null), \"feature_bytes\": $FEAT_BYTES}"
done
