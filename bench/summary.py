#!/usr/bin/env python3
"""Prints "mean ± std" (in %) of the test accuracy in scalegnn run summaries: with one
summary.json, over its runs (seeds); with several, over the files (splits)."""
import json
import statistics as st
import sys

files = sys.argv[1:]
if len(files) == 1:
    s = json.load(open(files[0]))
    accs = [r["test_acc"] for r in s["per_run"]]
else:
    accs = [json.load(open(f))["test_acc_mean"] for f in files]
print(f"{100 * st.mean(accs):.1f} ± {100 * st.pstdev(accs):.1f}")
