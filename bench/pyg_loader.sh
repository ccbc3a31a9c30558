#!/usr/bin/env bash
# Issue 20's loader figure: scalegnn.pyg.NeighborLoader against PyG's NeighborLoader, both
# iterating mini-batches of a scalegnn dataset (sampling + x/y gather, no training), one
# session, same fan-outs and batch size; peak RSS of each process by /usr/bin/time.
#   bash bench/pyg_loader.sh DATASET_DIR     (e.g. the products preset: scalegnn synth --preset products)
# Env: PY (default: the anchor venv's python, ../shared/bench/setup_anchor.sh; scalegnn is
#      installed into it with a release build first), BATCHES (50), WARMUP (5), THREADS (2),
#      WORK (/tmp/scalegnn-pyg-loader),
#      LIMIT_MIB: instead, run both inside a cgroup-v1 memory limit of that size (page cache
#      included; needs root) and say whether each ran, its seeds/s and the cgroup's peak.
set -euo pipefail
cd "$(dirname "$0")/.."
DS=$(readlink -f "${1:?dataset directory}")
PY=${PY:-$HOME/.cache/scalegnn-anchor-venv/bin/python}
BATCHES=${BATCHES:-50}
WARMUP=${WARMUP:-5}
THREADS=${THREADS:-2}
WORK=${WORK:-/tmp/scalegnn-pyg-loader}
[ -x "$PY" ] || { echo "skip: $PY is absent (run ../shared/bench/setup_anchor.sh)" >&2; exit 0; }
mkdir -p "$WORK"
VENV=$(dirname "$(dirname "$PY")")
"$PY" -m pip install -q --disable-pip-version-check "maturin>=1.7,<2"
(cd crates/python && VIRTUAL_ENV=$VENV PATH="$VENV/bin:$PATH" maturin develop --release --quiet)
# The anchor reads make_synth.py's layout: the same files plus meta.json.
VIEW="$WORK/view-$(basename "$DS")"
mkdir -p "$VIEW"
for f in indptr.npy indices.npy x.npy y.npy train_idx.npy val_idx.npy test_idx.npy; do
    ln -sf "$DS/$f" "$VIEW/$f"
done
python3 -c "import json,sys; m=json.load(open(sys.argv[1])); json.dump({'num_nodes': m['num_nodes']}, open(sys.argv[2],'w'))" \
    "$DS/manifest.json" "$VIEW/meta.json"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
if [ -n "${LIMIT_MIB:-}" ]; then
    CG_ROOT=/sys/fs/cgroup/memory
    [ -w "$CG_ROOT" ] || { echo "LIMIT_MIB needs a writable cgroup-v1 memory controller at $CG_ROOT" >&2; exit 1; }
    for impl in pyg scalegnn; do
        cg="$CG_ROOT/scalegnn-pyg-loader-$$-$impl"
        mkdir -p "$cg"
        echo $((LIMIT_MIB << 20)) >"$cg/memory.limit_in_bytes"
        sync; echo 3 >/proc/sys/vm/drop_caches
        if [ $impl = pyg ]; then
            cmd=("$PY" ../shared/bench/pyg_anchor.py "$VIEW" --skip sampler,train --batches "$BATCHES"
                 --warmup "$WARMUP" --threads "$THREADS")
        else
            cmd=("$PY" bench/pyg_loader.py "$DS" --batches "$BATCHES" --warmup "$WARMUP")
        fi
        rc=0
        (echo $BASHPID >"$cg/cgroup.procs"; export OMP_NUM_THREADS=$THREADS RAYON_NUM_THREADS=$THREADS
         exec "${cmd[@]}") >"$WORK/limit-$impl.jsonl" 2>"$WORK/limit-$impl.err" || rc=$?
        peak=$(( $(cat "$cg/memory.max_usage_in_bytes") >> 20 ))
        python3 - "$impl" "$LIMIT_MIB" "$rc" "$peak" "$WORK/limit-$impl.jsonl" "$cpu" <<'PY'
import json, sys
impl, limit, rc, peak, path, cpu = sys.argv[1:7]
rate = None
for line in open(path):
    try:
        l = json.loads(line)
    except ValueError:
        continue
    rate = l.get("sample_seeds_per_s", rate) if "sample_seeds_per_s" in l else (
        l["value"] if l.get("metric") == "sample_seeds_per_s" else rate)
print(json.dumps({"impl": impl, "limit_mib": int(limit), "exit": int(rc), "ran": int(rc) == 0,
                  "seeds_per_s": rate, "cgroup_peak_mib": int(peak), "cpu": cpu}))
PY
        rmdir "$cg" 2>/dev/null || true
    done
    exit 0
fi
rss() { grep 'Maximum resident' "$1" | awk '{print $NF / 1024}'; }
OMP_NUM_THREADS=$THREADS /usr/bin/time -v "$PY" ../shared/bench/pyg_anchor.py "$VIEW" --skip sampler,train \
    --batches "$BATCHES" --warmup "$WARMUP" --threads "$THREADS" >"$WORK/pyg.jsonl" 2>"$WORK/pyg.err" || true
RAYON_NUM_THREADS=$THREADS /usr/bin/time -v "$PY" bench/pyg_loader.py "$DS" --batches "$BATCHES" \
    --warmup "$WARMUP" >"$WORK/ours.jsonl" 2>"$WORK/ours.err"
python3 - "$WORK" "$(rss "$WORK/pyg.err")" "$(rss "$WORK/ours.err")" "$cpu" <<'PY'
import json, sys
work, pyg_rss, our_rss, cpu = sys.argv[1], float(sys.argv[2] or 0), float(sys.argv[3] or 0), sys.argv[4]
pyg = {l["metric"]: l["value"] for l in map(json.loads, open(f"{work}/pyg.jsonl")) if "metric" in l}
ours = json.loads(open(f"{work}/ours.jsonl").read().strip().splitlines()[-1])
p, o = pyg.get("sample_seeds_per_s", 0), ours["sample_seeds_per_s"]
print(json.dumps({"pyg_seeds_per_s": round(p, 1), "scalegnn_seeds_per_s": o,
                  "ratio": round(o / p, 2) if p else None,
                  "pyg_peak_rss_mib": round(pyg_rss), "scalegnn_peak_rss_mib": round(our_rss),
                  "pyg_nodes_per_batch": pyg.get("sampled_nodes_per_batch"),
                  "scalegnn_nodes_per_batch": ours["sampled_nodes_per_batch"],
                  "batch": ours["batch"], "cpu": cpu}))
PY
