#!/usr/bin/env bash
# SAGMM's gate input (the derived table DATASET/derived/sagmm-gate-<key>/) built by streaming
# under a memory budget: one JSON line per budget with the plan, wall time per phase and the
# process's peak resident memory (VmHWM, and /usr/bin/time's maxrss), against the budget.
# The acceptance line of issue 13: peak RSS <= budget x 1.1 on the products preset.
#   bash bench/sagmm_gate.sh DATASET_DIR [BUDGET ...]      (default budgets: 3GiB 2GiB)
#   e.g. bash bench/sagmm_gate.sh /work/synth/products-sg 3GiB 2GiB 1600MiB
# Make the dataset with `scalegnn synth --preset products --out /work/synth/products-sg`.
# Each budget removes the gate tables of DATASET first (only derived/sagmm-gate-*), so every
# line measures a build, not a reuse. K=8 eigenvectors unless K is set.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:?dataset dir}
shift
BUDGETS=("$@")
[ ${#BUDGETS[@]} -eq 0 ] && BUDGETS=(3GiB 2GiB)
K=${K:-8}
cargo build --release -q -p scalegnn-loader --example build_gate
CPU=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
CORES=$(nproc)
for b in "${BUDGETS[@]}"; do
    rm -rf "$DATA"/derived/sagmm-gate-*
    log=$(mktemp)
    if /usr/bin/time -f '%M %e' -o "$log.time" target/release/examples/build_gate "$DATA" "$b" "$K" >"$log" 2>"$log.err"; then
        read -r maxrss_kb wall <"$log.time"
        python3 - "$log" "$maxrss_kb" "$wall" "$CPU" "$CORES" <<'PY'
import json, sys
line = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
maxrss = int(sys.argv[2]) * 1024
line.update({"maxrss_bytes": maxrss, "process_seconds": float(sys.argv[3]),
             "maxrss_over_budget": round(maxrss / line["budget_bytes"], 4),
             "within_budget_plus_10pct": maxrss <= 1.1 * line["budget_bytes"],
             "cpu": sys.argv[4], "cores": int(sys.argv[5])})
print(json.dumps(line))
PY
    else
        # A budget below the build's minimum is refused with a message naming it.
        python3 -c 'import json,sys; print(json.dumps({"bench":"sagmm_gate_build","budget":sys.argv[1],"refused":open(sys.argv[2]).read().strip()}))' "$b" "$log.err"
    fi
    rm -f "$log" "$log.time" "$log.err"
done
