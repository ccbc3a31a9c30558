"""PyG's reference for graph-level training throughput (issue 15, docs/graph.md): the same
GIN as `scalegnn train --model gin --layers L --hidden H --batch-norm true --readout sum`
(each layer Linear -> BatchNorm -> ReLU -> Linear after the sum aggregation, ReLU between
layers, global_add_pool, head Linear -> ReLU -> Linear), trained with PyG's DataLoader on a
TUDataset read from its raw text files. Prints one JSON line: training graphs per second
over the timed epochs (the first epoch is a warm-up).

    python bench/pyg_graph.py --tu ../shared/datasets/tu/PROTEINS --work /tmp/pyg-tu
"""
import argparse
import json
import os
import shutil
import time

import torch
from torch import nn
from torch_geometric.datasets import TUDataset
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GINConv, global_add_pool


class Gin(nn.Module):
    def __init__(self, fin, hidden, classes, layers):
        super().__init__()
        self.convs = nn.ModuleList()
        for l in range(layers):
            d = fin if l == 0 else hidden
            mlp = nn.Sequential(nn.Linear(d, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                nn.Linear(hidden, hidden))
            self.convs.append(GINConv(mlp))
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x, edge_index, batch):
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            if i < len(self.convs) - 1:
                x = x.relu()
        return self.head(global_add_pool(x, batch))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tu", required=True, help="a TUDataset folder (NAME_A.txt, ...)")
    ap.add_argument("--work", default="/tmp/pyg-tu")
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    name = os.path.basename(os.path.normpath(a.tu))
    raw = os.path.join(a.work, name, "raw")
    os.makedirs(raw, exist_ok=True)
    for f in os.listdir(a.tu):
        if f.startswith(name + "_") and f.endswith(".txt"):
            shutil.copy(os.path.join(a.tu, f), raw)
    ds = TUDataset(a.work, name, use_node_attr=True)
    loader = DataLoader(ds, batch_size=a.batch_size, shuffle=True)
    model = Gin(ds.num_features, a.hidden, ds.num_classes, a.layers)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    times = []
    for epoch in range(a.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        for b in loader:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(b.x, b.edge_index, b.batch), b.y)
            loss.backward()
            opt.step()
        if epoch > 0:
            times.append(time.perf_counter() - t0)
    per = sum(times) / len(times)
    print(json.dumps({"impl": "pyg", "dataset": name, "graphs": len(ds), "epoch_s": round(per, 4),
                      "graphs_per_s": round(len(ds) / per, 1), "torch": torch.__version__,
                      "threads": a.threads}))


if __name__ == "__main__":
    main()
