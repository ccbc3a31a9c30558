# Sourced by the SAGMM benches: prepare_graph G makes $WORK/ds-G from a folder of
# $SHARED/datasets/planetoid-npy/, or for synH a `scalegnn synth` graph with homophily H
# (4,000 nodes, 40,000 directed edges, seed 0). Needs BIN, WORK, SHARED. Fails (after saying
# so) when the shared folder is missing.
prepare_graph() {
  local g=$1 ds="$WORK/ds-$1" src
  [ -f "$ds/manifest.json" ] && return 0
  if [[ "$g" == syn* ]]; then
    "$BIN" synth --preset tiny --nodes 4000 --edges 40000 --homophily "${g#syn}" --seed 0 \
      --name "$g" --out "$ds" --force > /dev/null
  else
    src="$SHARED/datasets/planetoid-npy/$g"
    [ -d "$src" ] || { echo "skip $g: $src is missing" >&2; return 1; }
    "$BIN" ingest --format npy "$src" --out "$ds" --force > /dev/null
  fi
}
