#!/usr/bin/env python3
"""One SAGMM table row from the run directories under DIR: test accuracy mean ± std (in %),
mean parameters held at the end, mean inference ms of a full-graph pass at epoch 1 and at the
end (pruning shrinks it), and mean training wall seconds (SAGMM-PE includes pretraining)."""
import glob
import json
import os
import statistics as st
import sys

root = sys.argv[1]
accs, params, inf0, inf1, secs = [], [], [], [], []
for m in sorted(glob.glob(os.path.join(root, "**", "metrics.jsonl"), recursive=True)):
    lines = [json.loads(l) for l in open(m)]
    test = [l["value"] for l in lines if l["split"] == "test" and l["metric"] == "acc"]
    if not test:
        continue
    accs.append(test[-1])
    moe = [l for l in lines if l["split"] == "moe"]
    p = [l["value"] for l in moe if l["metric"] == "params"]
    i = [l["value"] for l in moe if l["metric"] == "infer_ms"]
    t = [l["value"] for l in moe if l["metric"] == "train_s"]
    if p:
        params.append(p[-1])
    if len(i) >= 2:
        # Epoch 1 pays first-touch allocation: the second pass stands for "before pruning".
        inf0.append(i[1])
        inf1.append(i[-1])
    if t:
        secs.append(t[-1])
mean = lambda v: st.mean(v) if v else float("nan")
acc = f"{100 * mean(accs):.1f} ± {100 * st.pstdev(accs):.1f}" if accs else "-"
print(f"{acc} | {mean(params):,.0f} | {mean(inf0):.1f} → {mean(inf1):.1f} | {mean(secs):.1f}")
