#!/usr/bin/env python3
"""Write a make_synth.py directory (CSR indptr/indices, *_idx) in the edge_index layout that
`pyg_anchor.py --full-batch` reads (edge_index [2,E], x, y, *_mask), so both engines train
full-batch on the very same graph. Usage: to_edge_index.py SRC_DIR OUT_DIR (needs numpy)."""
import os
import sys

import numpy as np


def main(src, out):
    indptr = np.load(os.path.join(src, "indptr.npy"))
    indices = np.load(os.path.join(src, "indices.npy"))
    n = len(indptr) - 1
    # Row i lists the sources of edges into i: edge_index = [sources; targets].
    dst = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    tmp = out + ".tmp"
    os.makedirs(tmp, exist_ok=True)
    np.save(os.path.join(tmp, "edge_index.npy"), np.stack([indices.astype(np.int64), dst]))
    np.save(os.path.join(tmp, "x.npy"), np.load(os.path.join(src, "x.npy")))
    np.save(os.path.join(tmp, "y.npy"), np.load(os.path.join(src, "y.npy")))
    for part in ("train", "val", "test"):
        mask = np.zeros(n, dtype=bool)
        mask[np.load(os.path.join(src, f"{part}_idx.npy"))] = True
        np.save(os.path.join(tmp, f"{part}_mask.npy"), mask)
    os.replace(tmp, out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
