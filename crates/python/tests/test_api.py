"""The Python API on graphs written here: ingest from arrays, train, predict, errors, Ctrl-C."""

import _thread
import json

import numpy as np
import pytest

import scalegnn
from conftest import planted


def test_import_and_version():
    assert scalegnn.__version__.count(".") == 2
    assert issubclass(scalegnn.ScalegnnError, Exception)


def test_ingest_from_arrays_masks_or_indices(tmp_path, graph):
    ei, x, y, tr, va, te = graph
    ds = scalegnn.ingest(tmp_path / "a", ei, x, y, tr, va, te, undirected=True, name="planted")
    assert (ds.num_nodes, ds.num_features, ds.num_classes) == (300, 3, 3)
    assert ds.name == "planted" and ds.task == "node_classification"
    # Index arrays give the same dataset as masks.
    ds2 = scalegnn.ingest(
        tmp_path / "b", ei, x, y, np.flatnonzero(tr), np.flatnonzero(va), np.flatnonzero(te),
        undirected=True,
    )
    assert ds2.num_edges == ds.num_edges
    for split in ("train", "val", "test"):
        a = np.load(tmp_path / "a" / f"{split}_idx.npy")
        b = np.load(tmp_path / "b" / f"{split}_idx.npy")
        assert (a == b).all(), split
    # Reopened from its path.
    assert scalegnn.Dataset.open(tmp_path / "a").num_edges == ds.num_edges
    # OGB's and PyG's [N, 1] class ids read as classes.
    ds3 = scalegnn.ingest(tmp_path / "c", ei, x, y.reshape(-1, 1), tr, va, te)
    assert ds3.task == "node_classification" and ds3.num_classes == 3


def test_bad_input_names_it_and_leaves_nothing(tmp_path, graph):
    ei, x, y, tr, va, te = graph
    bad = ei.copy()
    bad[1, 7] = 5000
    with pytest.raises(scalegnn.ScalegnnError, match="5000"):
        scalegnn.ingest(tmp_path / "out", bad, x, y, tr, va, te, num_nodes=300)
    assert not (tmp_path / "out").exists()
    nan = x.copy()
    nan[4, 1] = np.nan
    with pytest.raises(scalegnn.ScalegnnError, match="not finite"):
        scalegnn.ingest(tmp_path / "out", ei, nan, y, tr, va, te)
    assert not (tmp_path / "out").exists()
    with pytest.raises(scalegnn.ScalegnnError, match=r"\[2, E\]"):
        scalegnn.ingest(tmp_path / "out", ei.T, x, y)
    with pytest.raises(scalegnn.ScalegnnError, match="train_mask"):
        scalegnn.ingest(tmp_path / "out", ei, x, y, tr[:10], va, te)


def test_train_predict_embed_and_reopen(tmp_path, graph):
    ei, x, y, tr, va, te = graph
    ds = scalegnn.ingest(tmp_path / "ds", ei, x, y, tr, va, te, undirected=True)
    seen = []
    run = scalegnn.train(
        ds, model="gcn", out=tmp_path / "run", epochs=60, hidden=16, seed=1, progress=False,
        on_epoch=lambda run, e, n, loss, val: seen.append((e, val["acc"])),
    )
    assert [e for e, _ in seen] == list(range(1, 61))
    assert run.metric == "acc" and len(run.results) == 1
    # Features alone give about 0.6 (noise 1.5 around a one-hot); neighbours lift it.
    assert run.test > 0.8, run.test
    pred = run.predict()
    assert pred.shape == (300,) and pred.dtype == np.int64
    acc = (pred[te] == y[te]).mean()
    assert abs(acc - run.test) < 1e-9, (acc, run.test)
    proba = run.predict_proba()
    assert proba.shape == (300, 3) and proba.dtype == np.float32
    assert np.allclose(proba.sum(1), 1, atol=1e-5)
    assert (proba.argmax(1) == pred).all()
    emb = run.embed()
    assert emb.shape == (300, 16) and emb.dtype == np.float32
    scores = run.scores()
    assert abs(scores["test"]["acc"] - run.test) < 1e-9
    again = scalegnn.Run.open(tmp_path / "run")
    assert again.test == run.test
    assert (again.predict() == pred).all()


def test_several_runs_and_regression(tmp_path, graph):
    ei, x, y, tr, va, te = graph
    target = (y * 2.0 + 1.0).astype(np.float32)  # a float y is a regression target
    ds = scalegnn.ingest(tmp_path / "reg", ei, x, target, tr, va, te, undirected=True)
    assert ds.task == "node_regression"
    run = scalegnn.train(ds, model="sage", out=tmp_path / "run", epochs=40, runs=2,
                         progress=False)
    assert len(run.results) == 2 and run.metric == "rmse"
    assert [r["seed"] for r in run.results] == [0, 1]
    # The mean predictor's RMSE is the targets' std, 1.63.
    assert run.test < 1.3, run.test
    v = run.predict(run=1)
    assert v.dtype == np.float32 and v.shape in ((300,), (300, 1))
    with pytest.raises(scalegnn.ScalegnnError, match="not class probabilities"):
        run.predict_proba()


def test_config_errors_name_the_key(tmp_path, graph):
    ei, x, y, tr, va, te = graph
    ds = scalegnn.ingest(tmp_path / "ds", ei, x, y, tr, va, te)
    with pytest.raises(scalegnn.ScalegnnError, match="hiden"):
        scalegnn.train(ds, out=tmp_path / "r", hiden=8)
    with pytest.raises(scalegnn.ScalegnnError, match="dropout"):
        scalegnn.train(ds, out=tmp_path / "r", dropout=1.5)
    with pytest.raises(scalegnn.ScalegnnError, match="unknown model"):
        scalegnn.train(ds, model="gcn2", out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_ctrl_c_stops_training_cleanly(tmp_path, graph):
    ei, x, y, tr, va, te = graph
    ds = scalegnn.ingest(tmp_path / "ds", ei, x, y, tr, va, te)

    def interrupt(run, epoch, epochs, loss, val):
        if epoch == 3:
            _thread.interrupt_main()  # what Ctrl-C does

    with pytest.raises(KeyboardInterrupt):
        scalegnn.train(ds, out=tmp_path / "run", epochs=500, progress=False, on_epoch=interrupt)
    lines = [json.loads(l) for l in open(tmp_path / "run" / "metrics.jsonl")]
    last = max(l["epoch"] for l in lines)
    assert 3 <= last < 500, last
    # What --resume needs is there.
    assert (tmp_path / "run" / "state").exists()


def test_integer_masks_damaged_files_and_foreign_dirs(tmp_path, graph):
    ei, x, y, tr, va, te = graph
    # 0/1 integer masks (a row per node) read as masks, as boolean ones do.
    a = scalegnn.ingest(tmp_path / "a", ei, x, y, tr.astype(np.int64), va.astype(np.int8),
                        te.astype(np.int32))
    assert (np.load(tmp_path / "a" / "train_idx.npy") == np.flatnonzero(tr)).all()
    assert a.num_nodes == 300
    # A truncated file: opening says which.
    f = tmp_path / "a" / "x.npy"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(scalegnn.ScalegnnError, match="x.npy"):
        scalegnn.Dataset.open(tmp_path / "a")
    # A directory that holds no run.
    (tmp_path / "empty").mkdir()
    with pytest.raises(scalegnn.ScalegnnError, match="no trained run"):
        scalegnn.Run.open(tmp_path / "empty")


def test_ingest_csv_tables_with_headers_and_string_ids(tmp_path):
    # An export as real tools write it: a comment, a header, string ids, a column the graph
    # does not use, features and labels keyed by id in their own tables.
    (tmp_path / "edges.csv").write_text(
        "# exported 2026-12-06\nfrom,to,weight\nalice,bob,1\nbob,carol,2\ncarol,alice,1\n"
        "dave,alice,3\nerin,frank,1\nfrank,dave,2\n"
    )
    names = ["alice", "bob", "carol", "dave", "erin", "frank"]
    (tmp_path / "x.csv").write_text(
        "node,f0,f1\n" + "".join(f"{n},{i},{10 * i}\n" for i, n in enumerate(reversed(names)))
    )
    (tmp_path / "y.csv").write_text(
        "node,label\n" + "".join(f"{n},{i % 2}\n" for i, n in enumerate(names))
    )
    # The weight column is not read, and the warning says so.
    with pytest.warns(UserWarning, match='"weight" \\(column 2\\) not read'):
        ds = scalegnn.ingest_files(
            tmp_path / "edges.csv",
            tmp_path / "ds",
            "csv",
            header=True,
            src_col="from",
            dst_col="to",
            relabel=True,
            features=tmp_path / "x.csv",
            features_header=True,
            labels=tmp_path / "y.csv",
            labels_header=True,
            node_id_col="node",
            undirected=True,
        )
    assert (ds.num_nodes, ds.num_features, ds.num_classes) == (6, 2, 2)
    assert ds.num_edges == 12
    # Ids are numbered in sorted order; each row keeps its own features and label.
    ids = (tmp_path / "ds" / "node_ids.csv").read_text().split()
    assert [i for i in ids if i in names] == sorted(names)
    x = np.load(tmp_path / "ds" / "x.npy")
    y = np.load(tmp_path / "ds" / "y.npy")
    for row, n in enumerate(sorted(names)):
        i = list(reversed(names)).index(n)
        assert x[row].tolist() == [i, 10 * i]
        assert y[row] == names.index(n) % 2
    # Table options on another format, an unknown column and an unknown option are errors
    # naming what is wrong, and leave nothing behind.
    with pytest.raises(scalegnn.ScalegnnError, match="header does not apply to format npy"):
        scalegnn.ingest_files(tmp_path / "ds", tmp_path / "bad1", "npy", header=True)
    # A CSV-only option on a Parquet table would do nothing: refused too.
    with pytest.raises(scalegnn.ScalegnnError, match="labels does not apply to format parquet"):
        scalegnn.ingest_files(tmp_path / "e.parquet", tmp_path / "bad1", "parquet",
                              labels=tmp_path / "y.csv")
    with pytest.raises(scalegnn.ScalegnnError, match="nope"):
        scalegnn.ingest_files(
            tmp_path / "edges.csv", tmp_path / "bad2", "csv", header=True, src_col="nope",
            relabel=True,
        )
    with pytest.raises(scalegnn.ScalegnnError, match="unknown table option `hedaer`"):
        scalegnn._native.ingest_files(
            str(tmp_path / "edges.csv"), str(tmp_path / "bad3"), "csv", table={"hedaer": True}
        )
    assert not any((tmp_path / f"bad{i}").exists() for i in (1, 2, 3))


def test_a_graph_without_features_trains_on_degree_features(tmp_path, graph):
    edge_index, _, y, train, val, test = graph
    bare = scalegnn.ingest(tmp_path / "bare", edge_index, y=y, train_mask=train,
                           val_mask=val, test_mask=test)
    assert bare.num_features == 0
    with pytest.raises(scalegnn.ScalegnnError, match="degree-features"):
        scalegnn.train(bare, model="gcn", epochs=2, out=tmp_path / "r0", progress=False)
    ds = scalegnn.ingest(tmp_path / "deg", edge_index, y=y, train_mask=train, val_mask=val,
                         test_mask=test, degree_features=True)
    assert ds.num_features == 5
    x = np.load(tmp_path / "deg" / "x.npy")
    # Column 0 is ln(1 + in-degree): the planted graph's nodes have different degrees.
    assert x.shape == (len(y), 5) and np.isfinite(x).all() and x[:, 0].std() > 0
    run = scalegnn.train(ds, model="gcn", epochs=5, out=tmp_path / "r1", progress=False)
    assert 0.0 <= run.test <= 1.0


def test_link_prediction_from_python(tmp_path, graph):
    edge_index, x, _, _, _, _ = graph
    ds = scalegnn.ingest(tmp_path / "g", edge_index, x=x, undirected=True)
    ds = scalegnn.split_edges(ds, "0.8,0.1,0.1", seed=3)
    assert ds.manifest["link_split"]["seed"] == 3
    assert (tmp_path / "g" / "link_test_neg.npy").exists()
    # A second split replaces the first only when asked to.
    with pytest.raises(scalegnn.ScalegnnError, match="force=True"):
        scalegnn.split_edges(ds, seed=4)
    with pytest.raises(scalegnn.ScalegnnError, match="link_split"):
        scalegnn.split_edges(ds, "0.9,0.2,0.1", force=True)
    assert scalegnn.Dataset.open(tmp_path / "g").manifest["link_split"]["seed"] == 3
    run = scalegnn.train(ds, model="gcn", task="link", epochs=30, out=tmp_path / "r",
                         progress=False)
    assert run.metric == "roc_auc"
    # The planted communities make edges predictable from the features.
    assert run.test > 0.6, run.test
    p = run.pair_scores(np.array([[0, 1], [2, 3]], dtype=np.int64))
    assert p.shape[0] == 2 and ((p >= 0) & (p <= 1)).all()
