"""scalegnn.pyg.NeighborLoader: PyG's batch layout from scalegnn's sampler and store."""

import numpy as np
import pytest

import scalegnn
from scalegnn.pyg import NeighborLoader


def edges_of(ei):
    return set(zip(ei[0].tolist(), ei[1].tolist()))


def test_batches_follow_pygs_layout_and_the_graph(tmp_path, graph):
    ei, x, y, tr, va, te = graph
    ds = scalegnn.ingest(tmp_path / "ds", ei, x, y, tr, va, te, undirected=True)
    # The stored graph (deduplicated, both directions): what every sampled edge must be in.
    stored = np.concatenate([ei, ei[::-1]], axis=1)
    graph_edges = edges_of(stored)
    loader = NeighborLoader(ds, num_neighbors=[3, 2], batch_size=16, input_nodes="train",
                            shuffle=True, seed=5, to="numpy")
    train = np.flatnonzero(tr)
    assert len(loader) == -(-len(train) // 16)
    seen = []
    for b in loader:
        n, bs = b.num_nodes, b.batch_size
        seeds = b.n_id[:bs]
        seen.extend(seeds.tolist())
        assert b.num_sampled_nodes.sum() == n and b.num_sampled_nodes[0] == bs
        assert b.num_sampled_edges.sum() == b.edge_index.shape[1]
        assert len(np.unique(b.n_id)) == n  # each node once
        src, dst = b.edge_index
        assert src.max() < n and dst.max() < n
        # Edge (neighbour -> node) exists in the graph: global ids via n_id.
        for s, d in zip(b.n_id[src].tolist(), b.n_id[dst].tolist()):
            assert (s, d) in graph_edges, (s, d)
        # Hop 1: edges into the seeds, at most 3 per seed; hop 2 into hop-1 nodes, at most 2.
        h1 = b.num_sampled_edges[0]
        assert (dst[:h1] < bs).all()
        assert np.bincount(dst[:h1], minlength=bs).max() <= 3
        hop1_nodes = bs + b.num_sampled_nodes[1]
        assert ((dst[h1:] >= bs) & (dst[h1:] < hop1_nodes)).all()
        assert np.bincount(dst[h1:], minlength=n).max() <= 2
        assert len(edges_of(b.edge_index)) == b.edge_index.shape[1]  # no edge twice
        # The rows are the nodes' features and labels.
        assert np.array_equal(b.x, x[b.n_id])
        assert np.array_equal(b.y, y[b.n_id])
    assert sorted(seen) == train.tolist()  # every seed once per pass
    assert seen != train.tolist()  # shuffled


def test_same_seed_same_passes(tmp_path, graph):
    ei, x, y, tr, va, te = graph
    ds = scalegnn.ingest(tmp_path / "ds", ei, x, y, tr, va, te, undirected=True)

    def pass_of(loader):
        return [(b.n_id.tolist(), b.edge_index.tolist()) for b in loader]

    a = NeighborLoader(ds, [4, 4], batch_size=32, shuffle=True, seed=1, to="numpy")
    b = NeighborLoader(ds, [4, 4], batch_size=32, shuffle=True, seed=1, to="numpy")
    first = pass_of(a)
    assert first == pass_of(b)
    assert pass_of(a) != first  # the next pass is another draw


def test_bad_arguments_are_named(tmp_path, graph):
    ei, x, y, tr, va, te = graph
    ds = scalegnn.ingest(tmp_path / "ds", ei, x, y, tr, va, te)
    with pytest.raises(scalegnn.ScalegnnError, match="seeds"):
        list(NeighborLoader(ds, [2], input_nodes=[0, 1, 999], to="numpy"))
    with pytest.raises(scalegnn.ScalegnnError, match="fanouts"):
        list(NeighborLoader(ds, [], to="numpy"))
    with pytest.raises(scalegnn.ScalegnnError, match="no nonexistent split"):
        NeighborLoader(ds, [2], input_nodes="nonexistent")
    # Leaving a pass early stops its worker (no hang, no error).
    it = iter(NeighborLoader(ds, [2], batch_size=4, to="numpy"))
    next(it)
    del it


def test_a_pyg_model_trains_through_the_loader(tmp_path, graph):
    torch = pytest.importorskip("torch")
    pyg = pytest.importorskip("torch_geometric")
    from torch_geometric.nn import GraphSAGE

    ei, x, y, tr, va, te = graph
    ds = scalegnn.ingest(tmp_path / "ds", ei, x, y, tr, va, te, undirected=True)
    torch.manual_seed(0)
    model = GraphSAGE(3, 32, num_layers=2, out_channels=3)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    loader = NeighborLoader(ds, [10, 10], batch_size=32, input_nodes="train", shuffle=True)
    for _ in range(30):
        for b in loader:
            assert isinstance(b, pyg.data.Data)
            opt.zero_grad()
            out = model(b.x, b.edge_index)[: b.batch_size]
            loss = torch.nn.functional.cross_entropy(out, b.y[: b.batch_size])
            loss.backward()
            opt.step()
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for b in NeighborLoader(ds, [-1, -1], batch_size=64, input_nodes="test"):
            pred = model(b.x, b.edge_index)[: b.batch_size].argmax(1)
            correct += int((pred == b.y[: b.batch_size]).sum())
            total += b.batch_size
    assert correct / total > 0.8, correct / total


def test_pygs_own_loader_reads_the_stores(tmp_path, graph):
    torch = pytest.importorskip("torch")
    pytest.importorskip("torch_geometric")
    from torch_geometric.loader import NeighborLoader as PygLoader

    from scalegnn.pyg import stores

    ei, x, y, tr, va, te = graph
    ds = scalegnn.ingest(tmp_path / "ds", ei, x, y, tr, va, te, undirected=True)
    fs, gs = stores(ds)
    stored = np.concatenate([ei, ei[::-1]], axis=1)
    graph_edges = edges_of(stored)
    train = torch.from_numpy(np.flatnonzero(tr))
    loader = PygLoader((fs, gs), num_neighbors=[4, 3], batch_size=20, input_nodes=train)
    seen = 0
    for b in loader:
        n_id = b.n_id.numpy()
        assert np.array_equal(b.x.numpy(), x[n_id])
        assert np.array_equal(b.y.numpy(), y[n_id])
        src, dst = b.edge_index.numpy()
        for s, d in zip(n_id[src].tolist(), n_id[dst].tolist()):
            assert (s, d) in graph_edges
        seen += b.batch_size
    assert seen == tr.sum()


def test_the_layer_wise_form_nests_its_blocks(tmp_path, graph):
    ei, x, y, tr, va, te = graph
    ds = scalegnn.ingest(tmp_path / "ds", ei, x, y, tr, va, te, undirected=True)
    graph_edges = edges_of(np.concatenate([ei, ei[::-1]], axis=1))
    loader = NeighborLoader(ds, [4, 3], batch_size=16, input_nodes="train", shuffle=True,
                            to="numpy", layout="blocks")
    seen = 0
    for b in loader:
        batch_size, n_id, adjs = b
        assert len(adjs) == 2
        # Input layer first: its sources are every node; each layer's destinations are the
        # next layer's sources; the last layer's destinations are the seeds.
        assert adjs[0][2][0] == len(n_id)
        assert adjs[0][2][1] == adjs[1][2][0]
        assert adjs[1][2][1] == batch_size
        for (edge_index, _, (n_src, n_dst)), fan in zip(adjs, [3, 4]):
            src, dst = edge_index
            assert src.max() < n_src and dst.max() < n_dst
            per_dst = np.bincount(dst, minlength=n_dst)
            # Hop 2's new nodes get 3; the seeds keep their hop-1 sample (4) in every layer.
            assert per_dst[batch_size:].max(initial=0) <= fan and per_dst[:batch_size].max() <= 4
            for s_, d_ in zip(n_id[src].tolist(), n_id[dst].tolist()):
                assert (s_, d_) in graph_edges
        assert np.array_equal(b.x, x[n_id])
        seen += batch_size
    assert seen == tr.sum()


def test_a_pyg_layer_wise_model_trains_on_the_blocks(tmp_path, graph):
    torch = pytest.importorskip("torch")
    pytest.importorskip("torch_geometric")
    from torch_geometric.nn import SAGEConv

    ei, x, y, tr, va, te = graph
    ds = scalegnn.ingest(tmp_path / "ds", ei, x, y, tr, va, te, undirected=True)
    torch.manual_seed(0)
    convs = torch.nn.ModuleList([SAGEConv(3, 32), SAGEConv(32, 3)])
    opt = torch.optim.Adam(convs.parameters(), lr=0.01)

    def forward(b):
        h = b.x
        for i, (edge_index, _, size) in enumerate(b.adjs):
            h = convs[i]((h, h[: size[1]]), edge_index)
            if i == 0:
                h = h.relu()
        return h

    loader = NeighborLoader(ds, [10, 10], batch_size=32, input_nodes="train", shuffle=True,
                            layout="blocks")
    for _ in range(30):
        for b in loader:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(forward(b), b.y[: b.batch_size])
            loss.backward()
            opt.step()
    correct = total = 0
    with torch.no_grad():
        for b in NeighborLoader(ds, [-1, -1], batch_size=64, input_nodes="test", layout="blocks"):
            pred = forward(b).argmax(1)
            correct += int((pred == b.y[: b.batch_size]).sum())
            total += b.batch_size
    assert correct / total > 0.8, correct / total


def test_link_batches_follow_pygs_link_layout(tmp_path, graph):
    from scalegnn.pyg import LinkNeighborLoader

    ei, x, y, tr, va, te = graph
    ds = scalegnn.ingest(tmp_path / "ds", ei, x, y, tr, va, te, undirected=True)
    graph_edges = edges_of(np.concatenate([ei, ei[::-1]], axis=1))
    pairs = ei[:, :100]  # PyG's [2, m]
    loader = LinkNeighborLoader(ds, [3, 2], edge_label_index=pairs, batch_size=16,
                                neg_sampling_ratio=2.0, shuffle=True, to="numpy")
    assert len(loader) == 7
    got = []
    for b in loader:
        eli, lab = b.edge_label_index, b.edge_label
        npos = int(lab.sum())
        assert len(lab) == 3 * npos and (lab[:npos] == 1).all() and (lab[npos:] == 0).all()
        assert eli.max() < len(b.n_id)
        # The scored pairs' endpoints are the batch's seeds.
        assert eli.max() < b.batch_size
        glob = b.n_id[eli]
        got.extend(zip(glob[0][:npos].tolist(), glob[1][:npos].tolist()))
        for s_, d_ in zip(glob[0][npos:].tolist(), glob[1][npos:].tolist()):
            assert s_ != d_
        src, dst = b.edge_index
        for s_, d_ in zip(b.n_id[src].tolist(), b.n_id[dst].tolist()):
            assert (s_, d_) in graph_edges
        assert np.array_equal(b.x, x[b.n_id])
    assert sorted(got) == sorted(zip(pairs[0].tolist(), pairs[1].tolist()))
    with pytest.raises(scalegnn.ScalegnnError, match="pairs row"):
        list(LinkNeighborLoader(ds, [2], edge_label_index=np.array([[0, 999]]), to="numpy"))


def test_link_batches_as_pyg_data(tmp_path, graph):
    pytest.importorskip("torch")
    pyg = pytest.importorskip("torch_geometric")
    from scalegnn.pyg import LinkNeighborLoader

    ei, x, y, tr, va, te = graph
    ds = scalegnn.ingest(tmp_path / "ds", ei, x, y, tr, va, te, undirected=True)
    b = next(iter(LinkNeighborLoader(ds, [3, 2], edge_label_index=ei[:, :40], batch_size=8)))
    assert isinstance(b, pyg.data.Data)
    assert tuple(b.edge_label_index.shape) == (2, 16) and float(b.edge_label.sum()) == 8
    assert b.x.shape[0] == b.n_id.shape[0]


def test_link_pairs_layouts_and_held_out_edges(tmp_path, graph):
    from scalegnn.pyg import LinkNeighborLoader

    ei, x, y, tr, va, te = graph
    ds = scalegnn.ingest(tmp_path / "ds", ei, x, y, tr, va, te, undirected=True)
    # A 2 x 2 array is PyG's [2, m]: pairs (a0, b0) and (a1, b1).
    two = np.array([[ei[0, 0], ei[0, 1]], [ei[1, 0], ei[1, 1]]])
    b = next(iter(LinkNeighborLoader(ds, [2], edge_label_index=two, batch_size=2,
                                     neg_sampling_ratio=0.0, to="numpy")))
    got = {tuple(p) for p in b.n_id[b.edge_label_index].T.tolist()}
    assert got == {(int(ei[0, 0]), int(ei[1, 0])), (int(ei[0, 1]), int(ei[1, 1]))}
    # A dataset with an edge split: held-out edges never carry messages, and val uses its
    # fixed negatives.
    import json
    import subprocess

    from conftest import cli_binary

    cli = cli_binary()
    if cli is None:
        pytest.skip("no scalegnn binary to split the edges with")
    out = subprocess.run([cli, "split-edges", str(tmp_path / "ds"), "--link-split",
                          "0.8,0.1,0.1", "--seed", "0"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    held = {tuple(p) for p in np.load(tmp_path / "ds" / "link_val_pos.npy").tolist()}
    held |= {tuple(p) for p in np.load(tmp_path / "ds" / "link_test_pos.npy").tolist()}
    held |= {(b_, a_) for a_, b_ in held}
    npos = len(np.load(tmp_path / "ds" / "link_val_pos.npy"))
    nneg = len(np.load(tmp_path / "ds" / "link_val_neg.npy"))
    labels = []
    for b in LinkNeighborLoader(tmp_path / "ds", [5, 5], edge_label_index="val",
                                batch_size=8, to="numpy"):
        labels.extend(b.edge_label.tolist())
        src, dst = b.edge_index
        for s_, d_ in zip(b.n_id[src].tolist(), b.n_id[dst].tolist()):
            assert (s_, d_) not in held
    assert sorted(labels) == [0.0] * nneg + [1.0] * npos


def test_edge_features_the_loader_does_not_serve_are_named(tmp_path, graph):
    ei, x, y, tr, va, te = graph
    attr = np.ones((ei.shape[1], 2), np.float32)
    ds = scalegnn.ingest(tmp_path / "ds", ei, x, y, tr, va, te, edge_attr=attr)
    with pytest.warns(UserWarning, match="edge_attr.npy"):
        NeighborLoader(ds, [2], to="numpy")
