#!/usr/bin/env python3
"""PyG reference for link prediction on sampled batches: LinkNeighborLoader + GraphSAGE +
dot decoder, on a scalegnn dataset directory with an edge split (scalegnn split-edges).

The same set-up as `scalegnn train DIR --task link --model sage --loader neighbor`:
  - message passing over the graph without the validation and test positives (both
    directions), training positives from link_train_pos.npy;
  - LinkNeighborLoader, fan-outs --fanouts, --batch-size positive pairs per batch, one
    uniform negative per positive (neg_sampling="binary"), num_workers 0;
  - GraphSAGE (mean, ReLU, dropout 0.5), --hidden wide, output --hidden; dot decoder; BCE;
    Adam --lr; torch threads --threads.
Timed: --batches training steps after --warmup untimed ones. Prints JSON lines
{metric, value, unit, ...}: train_edges_per_s (positive pairs per second), load_s,
rss_after_load_mib, peak_rss_mib.

Run with the anchor venv (../shared/bench/setup_anchor.sh):
  $PY bench/pyg_link.py data/products --batches 50 --warmup 5 [--mfg]
"""
import argparse
import json
import os
import sys
import time

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("dataset")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--batches", type=int, default=50)
ap.add_argument("--warmup", type=int, default=5)
ap.add_argument("--batch-size", type=int, default=1024)
ap.add_argument("--fanouts", default="15,10,5")
ap.add_argument("--hidden", type=int, default=256)
ap.add_argument("--lr", type=float, default=0.003)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--mfg", action="store_true",
                help="layer-wise: PyG's NeighborSampler samples bipartite blocks for the batch's "
                     "endpoints (positives and one uniform negative per positive), so layer l "
                     "computes only the nodes later layers need; PyG's fastest CPU set-up (its "
                     "trim_to_layer needs pyg-lib, which the registry does not publish)")
A = ap.parse_args()
os.environ.setdefault("OMP_NUM_THREADS", str(A.threads))
os.environ.setdefault("MKL_NUM_THREADS", str(A.threads))

import resource  # noqa: E402

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch_geometric  # noqa: E402
from torch_geometric.data import Data  # noqa: E402
from torch_geometric.loader import LinkNeighborLoader  # noqa: E402
from torch_geometric.nn.models import GraphSAGE  # noqa: E402

torch.set_num_threads(A.threads)
torch.manual_seed(A.seed)
T0 = time.perf_counter()


def log(msg):
    print(f"[pyg_link {time.perf_counter() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def report(metric, value, unit, **extra):
    rec = {"metric": metric, "value": round(float(value), 6), "unit": unit, "engine": "pyg",
           "dataset": os.path.basename(os.path.normpath(A.dataset)), "threads": A.threads,
           "batch_size": A.batch_size, "fanouts": A.fanouts, "model": f"sage-dot-{A.hidden}",
           "torch": torch.__version__, "pyg": torch_geometric.__version__}
    rec.update(extra)
    print(json.dumps(rec), flush=True)


def npy(name):
    p = os.path.join(A.dataset, name)
    if not os.path.exists(p):
        sys.exit(f"error: {p} is missing (make the edge split with scalegnn split-edges)")
    return np.load(p, mmap_mode="r")


t = time.perf_counter()
indptr = np.asarray(npy("indptr.npy"), dtype=np.int64)
src = np.asarray(npy("indices.npy"), dtype=np.int64)
n = indptr.size - 1
dst = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
held = np.concatenate([npy("link_val_pos.npy"), npy("link_test_pos.npy")]).astype(np.int64)
key = lambda a, b: np.minimum(a, b) * n + np.maximum(a, b)  # noqa: E731
keep = ~np.isin(key(src, dst), key(held[:, 0], held[:, 1]))
edge_index = torch.from_numpy(np.stack([src[keep], dst[keep]]))
del src, dst, keep
x = torch.from_numpy(np.asarray(npy("x.npy"), dtype=np.float32))
train = torch.from_numpy(np.asarray(npy("link_train_pos.npy"), dtype=np.int64)).t().contiguous()
data = Data(x=x, edge_index=edge_index, num_nodes=n)
fanouts = [int(v) for v in A.fanouts.split(",")]
loader = LinkNeighborLoader(data, num_neighbors=fanouts, edge_label_index=train,
                            edge_label=torch.ones(train.size(1)), neg_sampling="binary",
                            batch_size=A.batch_size, shuffle=True, num_workers=0)
report("load_s", time.perf_counter() - t, "s")
report("rss_after_load_mib", psutil.Process().memory_info().rss / 2**20, "MiB")
log(f"N={n:,} message edges={edge_index.size(1):,} train pairs={train.size(1):,}")



class BlockSAGE(torch.nn.Module):
    """GraphSAGE on bipartite blocks (the layer-wise set-up), output HIDDEN wide."""

    def __init__(self):
        super().__init__()
        from torch_geometric.nn import SAGEConv
        dims = [x.size(1)] + [A.hidden] * len(fanouts)
        self.convs = torch.nn.ModuleList(SAGEConv(i, o) for i, o in zip(dims, dims[1:]))

    def forward(self, h, adjs):
        for i, (ei, _, size) in enumerate(adjs):
            h = self.convs[i]((h, h[:size[1]]), ei)
            if i != len(self.convs) - 1:
                h = F.dropout(F.relu(h), p=0.5, training=self.training)
        return h


if A.mfg:
    from torch_geometric.loader import NeighborSampler
    from torch_sparse import SparseTensor
    # Row i of adj_t holds the sources of edges into i: what NeighborSampler samples from.
    adj_t = SparseTensor(row=edge_index[1], col=edge_index[0], sparse_sizes=(n, n))
    sampler = NeighborSampler(adj_t, sizes=fanouts, batch_size=A.batch_size)
    model = BlockSAGE()
else:
    model = GraphSAGE(x.size(1), A.hidden, num_layers=len(fanouts), out_channels=A.hidden,
                      dropout=0.5)
opt = torch.optim.Adam(model.parameters(), lr=A.lr)
model.train()
it = iter(loader)
order = torch.randperm(train.size(1))
pairs = 0
for i in range(A.warmup + A.batches):
    if i == A.warmup:
        t = time.perf_counter()
        pairs = 0
    opt.zero_grad()
    if A.mfg:
        pos = train[:, order[i * A.batch_size:(i + 1) * A.batch_size]]
        neg = torch.stack([pos[0], torch.randint(0, n, (pos.size(1),))])
        ends = torch.cat([pos, neg], 1)
        seeds, inv = torch.unique(ends.reshape(-1), return_inverse=True)
        bs, n_id, adjs = sampler.sample(seeds)
        z = model(x[n_id], adjs)
        s, d = inv.view(2, -1)
        label = torch.cat([torch.ones(pos.size(1)), torch.zeros(pos.size(1))])
    else:
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader)
            b = next(it)
        z = model(b.x, b.edge_index)
        s, d = b.edge_label_index
        label = b.edge_label
    logit = (z[s] * z[d]).sum(-1)
    loss = F.binary_cross_entropy_with_logits(logit, label)
    loss.backward()
    opt.step()
    pairs += int((label > 0.5).sum())
dt = time.perf_counter() - t
report("train_edges_per_s", pairs / dt, "pairs/s", batches=A.batches, mfg=A.mfg)
report("peak_rss_mib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "MiB")
