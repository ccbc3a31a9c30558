#!/usr/bin/env python3
"""Issue 20's zero-copy check: how much a Run.embed() adds to the process's memory, against
the size of the array it returns (a copy out of the library would add twice that).

    scalegnn synth --preset small --out /tmp/small
    python bench/python_embed_rss.py /tmp/small     (the package installed: pip install ./crates/python)
"""
import json
import re
import sys

import scalegnn


def mem():
    s = open("/proc/self/status").read()
    return {k: int(re.search(k + r":\s+(\d+)", s).group(1)) / 1024 for k in ("VmRSS", "RssAnon")}


run = scalegnn.train(sys.argv[1], model="gcn", hidden=256, epochs=2, out="/tmp/scalegnn-embed-rss",
                     force=True, progress=False)
run.model()  # the checkpoint and the features, loaded before measuring
before = mem()
e = run.embed()
after = mem()
print(json.dumps({
    "embed_shape": list(e.shape), "embed_mib": round(e.nbytes / 2**20, 1),
    "numpy_owns_a_copy": bool(e.flags["OWNDATA"]),
    "rss_growth_mib": round(after["VmRSS"] - before["VmRSS"], 1),
    "anon_growth_mib": round(after["RssAnon"] - before["RssAnon"], 1),
}))
