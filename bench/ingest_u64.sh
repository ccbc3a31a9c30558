#!/usr/bin/env bash
# Ingest of a CSV edge list with 64-bit ids (--relabel): wall time and peak RSS at two sizes,
# to show memory proportional to the edge count, not to the largest id.
#   bash bench/ingest_u64.sh [EDGES ...]        (default: 1000000 10000000)
# Writes the inputs under $WORK (default /tmp/scalegnn-ingest-u64), prints one JSON line per
# size: edges, seconds, peak RSS in MiB and bytes per edge.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/scalegnn-ingest-u64}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000000 10000000)
cargo build --release --quiet
BIN=$PWD/target/release/scalegnn
mkdir -p "$WORK"
for E in "${SIZES[@]}"; do
  CSV="$WORK/edges-$E.csv"
  if [ ! -s "$CSV" ]; then
    # E edges over E/10 nodes whose ids are random 48-bit values (as user ids are).
    python3 - "$E" "$CSV" <<'PY'
import random, sys
e, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(0)
n = max(e // 10, 2)
ids = rng.sample(range(10**14, 2 * 10**14), n)
with open(out, "w") as f:
    f.write("src,dst\n")
    for _ in range(e):
        f.write(f"{ids[rng.randrange(n)]},{ids[rng.randrange(n)]}\n")
PY
  fi
  OUT="$WORK/ds-$E"
  rm -rf "$OUT"
  /usr/bin/time -f "%e %M" -o "$WORK/time-$E" "$BIN" ingest --format csv "$CSV" --header \
    --relabel --out "$OUT" > /dev/null
  read -r SECS KB < "$WORK/time-$E"
  python3 -c "import json,sys; e,s,kb=int(sys.argv[1]),float(sys.argv[2]),int(sys.argv[3]); print(json.dumps({'bench':'ingest_u64','edges':e,'seconds':s,'peak_rss_mib':round(kb/1024,1),'bytes_per_edge':round(kb*1024/e,1),'cpu':open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].split('\n')[0].strip()}))" "$E" "$SECS" "$KB"
  rm -rf "$OUT"
done
