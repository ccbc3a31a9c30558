#!/usr/bin/env python3
"""Prints "mean ± std" (in %) of the test accuracy in scalegnn run summaries: with one
summary.json, over its runs (seeds); with several, over the files (splits)."""
import json
import statistics as st
import sys

files = sys.argv[1:]
if len(files) == 1:
    s = json.load(open(files[0]))
    accs = [r.get("test", r.get("test_acc")) for r in s["per_run"]]
else:
    # "test_mean" since the training core (summary of any task's metric); older runs:
    # "test_acc_mean".
    accs = []
    for f in files:
        s = json.load(open(f))
        accs.append(s.get("test_mean", s.get("test_acc_mean")))
print(f"{100 * st.mean(accs):.1f} ± {100 * st.pstdev(accs):.1f}")
