#!/usr/bin/env bash
# Out-of-core mini-batch training: SAGE 3 x 256, fan-outs 15,10,5, batch 1024, 2 threads,
# first in memory (no limit), then inside a cgroup-v1 memory limit (page cache included)
# that leaves room for the run's own heap and the graph topology plus only HALF of the
# feature file: the features are 2x what memory may hold of them, and the page cache cannot
# keep them. Stores: mmap, SQLite, and PostgreSQL when SCALEGNN_PG_URL is set (the server
# runs outside the cgroup, so its own cache is not limited: reported, not a target).
# Ways to read the features under the limit:
#   ooc-direct  mmap store read with direct I/O (--direct-io: O_DIRECT, no page cache) behind a
#               feature cache that gets the half of the features memory may hold, minus the
#               cache's id map and its miss buffer (one batch of rows): the recommended set-up;
#   ooc-mmap    the mmap store through the page cache (the kernel decides what stays);
#   ooc-sqlite, ooc-postgres: those stores, the page cache deciding what stays;
#   ooc-sqlite-cache: SQLite behind the same feature cache as ooc-direct;
#   ooc-sqlite-direct: SQLite read with direct I/O (the O_DIRECT VFS) behind the same cache,
#               less what SQLite's connections take (1 MiB page cache, 1 MiB read window and a
#               64 KiB side buffer each; one connection per prefetch thread and one more).
# RUNS="ooc-direct ooc-mmap" picks some of them.
#   bash bench/outofcore.sh DATASET_DIR      (a scalegnn dataset with x.npy and x.sqlite;
#                                             make them with `scalegnn store DIR --store sqlite`)
# Needs root (cgroup v1 memory controller at /sys/fs/cgroup/memory) and drops the page cache.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:?dataset dir}
THREADS=${THREADS:-2}
BATCHES=${BATCHES:-15}
WARMUP=${WARMUP:-3}
IO_THREADS=${IO_THREADS:-4}
RUNS=${RUNS:-ooc-direct ooc-sqlite-direct ooc-mmap ooc-sqlite ooc-postgres}
WORK=${WORK:-/tmp/scalegnn-outofcore}
CG_ROOT=/sys/fs/cgroup/memory
[ -w "$CG_ROOT" ] || { echo "needs a writable cgroup-v1 memory controller at $CG_ROOT (root)"; exit 1; }
cargo build --release --quiet
BIN=${BIN:-$PWD/target/release/scalegnn}
mkdir -p "$WORK"
OUT="$WORK/outofcore.jsonl"
rm -f "$OUT"
ARGS=(--threads "$THREADS" profile "$DATA" --no-verify --model sage --layers 3 --hidden 256
  --fanouts 15,10,5 --batch-size 1024 --lr 0.003 --dropout 0.5 --input-dropout 0
  --batches "$BATCHES" --warmup "$WARMUP" --codec f32)

# Peak anonymous memory of the in-memory run (heap: buffers, activations, model).
sync; echo 3 >/proc/sys/vm/drop_caches
"$BIN" "${ARGS[@]}" --store mmap --name mem-mmap --jsonl "$OUT" >/dev/null 2>"$WORK/mem.log" &
pid=$!; anon=0
while kill -0 $pid 2>/dev/null; do
  a=$(awk '/RssAnon/{print $2}' /proc/$pid/status 2>/dev/null || echo 0)
  [ "${a:-0}" -gt "$anon" ] && anon=$a
  sleep 0.2
done
wait $pid
x_bytes=$(stat -c %s "$DATA/x.npy")
topo=$(( $(stat -c %s "$DATA/indptr.npy") + $(stat -c %s "$DATA/indices.npy") ))
limit=$(( anon * 1024 + topo + x_bytes / 2 ))
echo "in-memory peak anon $((anon / 1024)) MiB; topology $((topo >> 20)) MiB; features $((x_bytes >> 20)) MiB;" \
  "cgroup limit $((limit >> 20)) MiB (features are 2x the $((x_bytes >> 21)) MiB left for them)"

# The direct run's cache: half the feature bytes, less the id map (4 B per node) and the miss
# buffer (one batch of decoded rows, sized from the in-memory run's sampled nodes).
nodes=$(python3 -c "import json; print(json.load(open('$DATA/manifest.json'))['num_nodes'])")
row=$(( x_bytes / nodes ))
batch_rows=$(python3 -c "import json; print(int(next(r['value'] for r in map(json.loads, open('$OUT')) if r['metric'] == 'sampled_nodes_per_batch')))")
cache_rows=$(( (x_bytes / 2 - 4 * nodes - batch_rows * row) / row ))
echo "direct run: cache of $cache_rows rows ($(( cache_rows * 100 / nodes )) % of the nodes; miss buffer $(( batch_rows * row >> 20 )) MiB)"
sq_cache_rows=$(( cache_rows - (IO_THREADS + 1) * (1024 + 1024 + 64) * 1024 / row ))
echo "sqlite direct run: cache of $sq_cache_rows rows"

in_cgroup() { # name store [extra flags...]
  local name=$1 store=$2; shift 2
  local cg="$CG_ROOT/scalegnn-ooc-$$-$name"
  mkdir -p "$cg"
  echo "$limit" >"$cg/memory.limit_in_bytes"
  sync; echo 3 >/proc/sys/vm/drop_caches
  (echo $BASHPID >"$cg/cgroup.procs"
   exec "$BIN" "${ARGS[@]}" --store "$store" --io-threads "$IO_THREADS" --name "$name" "$@" --jsonl "$OUT" >/dev/null 2>"$WORK/$name.log")
  echo "$name: cgroup peak $(( $(cat "$cg/memory.max_usage_in_bytes") >> 20 )) MiB (limit $((limit >> 20)) MiB)"
  rmdir "$cg" 2>/dev/null || true
}
for run in $RUNS; do
  case $run in
    ooc-direct) in_cgroup ooc-direct mmap --direct-io true --cache-rows "$cache_rows" ;;
    ooc-mmap) in_cgroup ooc-mmap mmap ;;
    ooc-sqlite) in_cgroup ooc-sqlite sqlite ;;
    ooc-sqlite-cache) in_cgroup ooc-sqlite-cache sqlite --cache-rows "$cache_rows" ;;
    ooc-sqlite-direct) in_cgroup ooc-sqlite-direct sqlite --direct-io true --cache-rows "$sq_cache_rows" ;;
    ooc-postgres) if [ -n "${SCALEGNN_PG_URL:-}" ]; then in_cgroup ooc-postgres postgres; fi ;;
    *) echo "unknown run $run (expected ooc-direct, ooc-mmap, ooc-sqlite, ooc-sqlite-cache, ooc-sqlite-direct, ooc-postgres)"; exit 1 ;;
  esac
done
python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
get = lambda d, m: next((r["value"] for r in rows if r["dataset"] == d and r["metric"] == m), None)
ref = get("mem-mmap", "train_seeds_per_s")
print(f"in memory (mmap, page cache warm after the first batches): {ref:.0f} seeds/s")
for d in ("ooc-direct", "ooc-mmap", "ooc-sqlite", "ooc-sqlite-cache", "ooc-sqlite-direct", "ooc-postgres"):
    v = get(d, "train_seeds_per_s")
    if v is None:
        continue
    f = get(d, "worker_fetch_ms"); c = get(d, "train_compute_ms"); w = get(d, "train_sample_ms")
    h = get(d, "cache_hit_rate"); mib = get(d, "fetch_mib_per_batch")
    extra = f"; cache hit rate {100 * h:.1f} %" if h is not None else ""
    extra += f"; {mib:.0f} MiB read per batch" if mib is not None else ""
    print(f"{d}: {v:.0f} seeds/s = {100 * v / ref:.0f} % of in-memory; per batch fetch {f:.0f} ms, compute {c:.0f} ms, waiting {w:.0f} ms{extra}")
PY
