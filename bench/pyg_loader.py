#!/usr/bin/env python3
"""scalegnn.pyg.NeighborLoader alone (sampling + feature/label gather into PyG batches), timed
the way ../shared/bench/pyg_anchor.py times PyG's NeighborLoader (its `loader` phase): --warmup
untimed batches, then --batches timed ones, seeds from train_idx.npy, shuffled. Prints one
JSON line: seeds/s, batch ms, nodes and edges per batch, peak RSS.

    python bench/pyg_loader.py DATASET_DIR [--batches 50] [--warmup 5] [--fanouts 15,10,5]
"""
import argparse
import json
import resource
import time

from scalegnn.pyg import NeighborLoader

ap = argparse.ArgumentParser()
ap.add_argument("dataset")
ap.add_argument("--batches", type=int, default=50)
ap.add_argument("--warmup", type=int, default=5)
ap.add_argument("--batch-size", type=int, default=1024)
ap.add_argument("--fanouts", default="15,10,5")
ap.add_argument("--prefetch", type=int, default=2)
ap.add_argument("--to", default="auto", help="auto (PyG Data when torch_geometric imports) or numpy")
ap.add_argument("--layout", default="subgraph", help="subgraph (NeighborLoader) or blocks (layer-wise)")
a = ap.parse_args()

loader = NeighborLoader(a.dataset, [int(v) for v in a.fanouts.split(",")],
                        batch_size=a.batch_size, input_nodes="train", shuffle=True,
                        prefetch=a.prefetch, to=a.to, layout=a.layout)


def batches():
    while True:
        yield from loader


it = batches()
need = a.warmup + a.batches
nodes = edges = 0
kind = None
for i in range(need):
    if i == a.warmup:
        t = time.perf_counter()
        nodes = edges = 0
    b = next(it)
    kind = type(b).__name__
    nodes += len(b.n_id)
    edges += (sum(adj[0].shape[1] for adj in b.adjs) if a.layout == "blocks"
              else b.edge_index.shape[1])
dt = time.perf_counter() - t
print(json.dumps({
    "engine": "scalegnn.pyg", "batch": kind, "layout": a.layout, "batch_size": a.batch_size, "fanouts": a.fanouts,
    "sample_seeds_per_s": round(a.batches * a.batch_size / dt, 1),
    "sample_batch_ms": round(dt / a.batches * 1e3, 2),
    "sampled_nodes_per_batch": round(nodes / a.batches), "sampled_edges_per_batch": round(edges / a.batches),
    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
}))
