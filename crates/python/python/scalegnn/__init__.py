"""scalegnn: graph neural networks on graphs too large for memory.

The same library as the ``scalegnn`` command line, with NumPy arrays in and out::

    import scalegnn
    ds = scalegnn.ingest("data/cora", edge_index=ei, x=x, y=y,
                         train_mask=tr, val_mask=va, test_mask=te)
    run = scalegnn.train(ds, model="gcn", epochs=200, out="runs/cora-gcn")
    run.test, run.predict(), run.embed()

Errors raise :class:`ScalegnnError` with the library's message (the file, line or key at
fault). Training runs with the interpreter released; Ctrl-C stops it at the next batch
boundary and raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

import numpy as np

from . import _native
from ._native import ScalegnnError

__all__ = [
    "Dataset",
    "Run",
    "ScalegnnError",
    "ingest",
    "ingest_files",
    "split_edges",
    "train",
    "__version__",
]

__version__ = _native.__version__

PathLike = Union[str, "os.PathLike[str]"]


class Dataset:
    """A scalegnn dataset directory (what ``scalegnn ingest`` writes), opened and verified."""

    def __init__(self, path: PathLike):
        self.path = Path(path)
        self.manifest: Dict[str, Any] = json.loads(_native.dataset_manifest(str(self.path)))

    @classmethod
    def open(cls, path: PathLike) -> "Dataset":
        """Opens the dataset directory ``path`` (its checksums are verified)."""
        return cls(path)

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def task(self) -> str:
        return self.manifest["task"]

    @property
    def num_nodes(self) -> int:
        return int(self.manifest["num_nodes"])

    @property
    def num_edges(self) -> int:
        """Directed edges of the stored graph (an undirected edge counts twice)."""
        return int(self.manifest["num_edges"])

    @property
    def num_features(self) -> int:
        return int(self.manifest["num_features"])

    @property
    def num_classes(self) -> int:
        return int(self.manifest.get("num_classes") or 0)

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return (
            f"Dataset({str(self.path)!r}, name={self.name!r}, nodes={self.num_nodes}, "
            f"edges={self.num_edges}, features={self.num_features}, classes={self.num_classes})"
        )


def _index(a: Any, what: str, n: Optional[int]) -> Optional[np.ndarray]:
    """A boolean mask or an index array as int64 indices."""
    if a is None:
        return None
    a = np.asarray(a)
    if a.ndim != 1:
        raise ScalegnnError(f"{what}: expected a 1-D mask or index array, got shape {a.shape}")
    if a.dtype == np.bool_:
        if n is not None and len(a) != n:
            raise ScalegnnError(f"{what}: a mask of {len(a)} entries for {n} rows")
        return np.flatnonzero(a).astype(np.int64)
    if not np.issubdtype(a.dtype, np.integer):
        raise ScalegnnError(f"{what}: expected a boolean mask or integer indices, got {a.dtype}")
    # An integer 0/1 array with a row per item is a mask: as indices it would repeat ids.
    if n is not None and n > 2 and len(a) == n and a.size and a.min() >= 0 and a.max() <= 1:
        return np.flatnonzero(a).astype(np.int64)
    return np.ascontiguousarray(a, dtype=np.int64)


def _labels(y: Any, what: str):
    """(class ids int64, None) for integer labels; (None, float32 [n, k]) for real targets."""
    if y is None:
        return None, None
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        if y.ndim == 2 and y.shape[1] == 1:  # OGB's and PyG's [N, 1]
            y = y[:, 0]
        if y.ndim != 1:
            raise ScalegnnError(f"{what}: class ids must be 1-D, got shape {y.shape}")
        return np.ascontiguousarray(y, dtype=np.int64), None
    if np.issubdtype(y.dtype, np.floating):
        y2 = y.reshape(len(y), -1) if y.ndim == 1 else y
        if y2.ndim != 2:
            raise ScalegnnError(f"{what}: targets must be [n] or [n, k], got shape {y.shape}")
        return None, np.ascontiguousarray(y2, dtype=np.float32)
    raise ScalegnnError(f"{what}: expected integer classes or float targets, got {y.dtype}")


def ingest(
    out: PathLike,
    edge_index: Any,
    x: Any = None,
    y: Any = None,
    train_mask: Any = None,
    val_mask: Any = None,
    test_mask: Any = None,
    *,
    num_nodes: Optional[int] = None,
    edge_attr: Any = None,
    graph_ptr: Any = None,
    graph_y: Any = None,
    undirected: bool = False,
    name: Optional[str] = None,
    split: Optional[str] = None,
    seed: int = 0,
    force: bool = False,
    degree_features: bool = False,
) -> Dataset:
    """Writes the dataset directory ``out`` from NumPy (or SciPy/PyTorch-convertible) arrays.

    - ``edge_index``: ``[2, E]`` node ids (PyG's layout), or a SciPy sparse adjacency matrix.
    - ``x``: ``[N, F]`` features (float32); ``y``: integer classes ``[N]`` or float targets
      ``[N]``/``[N, k]``.
    - ``train_mask``/``val_mask``/``test_mask``: boolean masks ``[N]`` or index arrays; without
      them ``split`` (``"random:0.6,0.2"`` or ``"per-class:20,30"``) makes one.
    - ``edge_attr``: ``[E, d]`` edge features aligned with ``edge_index``.
    - ``graph_ptr`` ``[G+1]`` and ``graph_y`` make a collection of graphs (graph-level tasks).
    - ``undirected`` adds the reverse of every edge.
    - ``degree_features``: a graph without ``x`` gets 5 structural features per node (its
      in-degree and the min, max, mean and std of its in-neighbours', as ``ln(1 + v)``; PyG's
      ``LocalDegreeProfile``), so an edge list alone can train.

    Bad input (an id out of range, a NaN feature, a label count that does not match) raises
    :class:`ScalegnnError` naming it, and nothing is left at ``out``.
    """
    if hasattr(edge_index, "tocoo"):  # a SciPy sparse matrix
        coo = edge_index.tocoo()
        if num_nodes is None:
            num_nodes = int(coo.shape[0])
        edge_index = np.vstack([coo.row, coo.col])
    ei = np.asarray(edge_index)
    if ei.ndim != 2 or ei.shape[0] != 2:
        raise ScalegnnError(f"edge_index: expected shape [2, E], got {ei.shape}")
    if not np.issubdtype(ei.dtype, np.integer):
        raise ScalegnnError(f"edge_index: expected integer node ids, got {ei.dtype}")
    src = np.ascontiguousarray(ei[0], dtype=np.int64)
    dst = np.ascontiguousarray(ei[1], dtype=np.int64)
    xs = None
    if x is not None:
        xs = np.asarray(x)
        if xs.ndim != 2:
            raise ScalegnnError(f"x: expected [N, F] features, got shape {xs.shape}")
        xs = np.ascontiguousarray(xs, dtype=np.float32)
    rows = xs.shape[0] if xs is not None else num_nodes
    yc, yv = _labels(y, "y")
    if graph_ptr is not None:
        graph_ptr = np.ascontiguousarray(np.asarray(graph_ptr), dtype=np.int64)
    gc, gv = _labels(graph_y, "graph_y")
    n_items = (len(graph_ptr) - 1) if graph_ptr is not None else rows
    ea = None
    if edge_attr is not None:
        ea = np.asarray(edge_attr, dtype=np.float32)
        ea = np.ascontiguousarray(ea.reshape(len(ea), -1))
    path = _native.ingest_arrays(
        os.fspath(out),
        src,
        dst,
        num_nodes=num_nodes,
        x=xs,
        y=yc,
        y_values=yv,
        train=_index(train_mask, "train_mask", n_items),
        val=_index(val_mask, "val_mask", n_items),
        test=_index(test_mask, "test_mask", n_items),
        edge_attr=ea,
        graph_ptr=graph_ptr,
        graph_y=gc,
        graph_y_values=gv,
        undirected=undirected,
        name=name,
        split=split,
        seed=seed,
        force=force,
        degree_features=degree_features,
    )
    return _warned(Dataset(path))


def split_edges(
    dataset: Union[Dataset, PathLike],
    link_split: str = "0.85,0.05,0.10",
    *,
    negatives: int = 1,
    seed: int = 0,
    force: bool = False,
) -> Dataset:
    """Draws an edge split for link prediction (``scalegnn split-edges``): the given shares of
    the undirected edges become training, validation and test positives, the held-out ones
    leave the message-passing graph, and each validation/test positive gets ``negatives``
    fixed negatives. Training on the dataset then defaults to ``task="link"`` when it has no
    labels. An existing split is replaced only with ``force=True``."""
    path = os.fspath(dataset)
    msg = _native.split_edges(
        path, link_split=link_split, negatives=negatives, seed=seed, force=force
    )
    print(msg, file=sys.stderr)
    return Dataset(path)


def _warned(ds: Dataset) -> Dataset:
    """Says what ingest skipped or found suspicious (the manifest keeps it too)."""
    import warnings

    for w in (ds.manifest.get("ingest") or {}).get("warnings", []):
        warnings.warn(f"scalegnn ingest: {w}", stacklevel=3)
    return ds


def ingest_files(
    input: PathLike,
    out: PathLike,
    format: str,
    *,
    undirected: bool = False,
    name: Optional[str] = None,
    split: Optional[str] = None,
    seed: int = 0,
    force: bool = False,
    relabel: bool = False,
    degree_features: bool = False,
    delimiter: Optional[str] = None,
    header: bool = False,
    src_col: Union[int, str, None] = None,
    dst_col: Union[int, str, None] = None,
    features: Optional[PathLike] = None,
    labels: Optional[PathLike] = None,
    features_header: bool = False,
    labels_header: bool = False,
    features_pairs: bool = False,
    node_id_col: Union[int, str, None] = None,
    id_col: Optional[str] = None,
    label_col: Union[int, str, None] = None,
    num_nodes: Optional[int] = None,
) -> Dataset:
    """Writes the dataset directory ``out`` from files: ``format`` is ``npy`` (a folder of
    ``edge_index.npy``, ``x.npy``, …), ``npz``, ``tu``, ``ogb``, ``graphbolt``, or an edge
    table, ``csv`` (or TSV) or ``parquet``.

    The table options are ``scalegnn ingest``'s flags of the same names: columns by 0-based
    index or header name (``src_col``/``dst_col``, default 0 and 1 for CSV, ``src``/``dst``
    for Parquet), ``header`` when the edge list's first line names its columns, ``features``
    and ``labels`` files (``.npy``, CSV/TSV or Parquet) with their own header flags and
    ``node_id_col``/``label_col``; ``relabel`` numbers any ids (strings too) 0..n in sorted
    order, keeping the originals in ``node_ids.csv``; ``degree_features`` gives a graph
    without features structural ones (see :func:`ingest`). Table options on another format
    are an error."""
    given = {
        "delimiter": delimiter,
        "header": header,
        "src_col": src_col,
        "dst_col": dst_col,
        "features": os.fspath(features) if features is not None else None,
        "labels": os.fspath(labels) if labels is not None else None,
        "features_header": features_header,
        "labels_header": labels_header,
        "features_pairs": features_pairs,
        "node_id_col": node_id_col,
        "id_col": id_col,
        "label_col": label_col,
        "num_nodes": num_nodes,
    }
    # Only what was set: the native side refuses table options on other formats.
    table = {k: v for k, v in given.items() if v is not None and v is not False}
    path = _native.ingest_files(
        os.fspath(input),
        os.fspath(out),
        format,
        undirected=undirected,
        name=name,
        split=split,
        seed=seed,
        force=force,
        relabel=relabel,
        degree_features=degree_features,
        table=table,
    )
    return _warned(Dataset(path))


class _Progress:
    """One line per tenth of a run's epochs on stderr, or a tqdm bar when tqdm is installed."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.run = None
        try:
            from tqdm.auto import tqdm  # type: ignore

            self.tqdm = tqdm
        except ImportError:
            self.tqdm = None

    def epoch(self, run: int, epoch: int, epochs: int, loss: float, val: Dict[str, float]):
        if not self.enabled:
            return
        shown = " ".join(f"{k} {v:.4f}" for k, v in list(val.items())[:2])
        if self.tqdm is not None:
            if self.run != run:
                self.close()
                self.bar = self.tqdm(total=epochs, desc=f"run {run}", leave=False)
                self.run = run
            self.bar.update(1)
            self.bar.set_postfix_str(f"loss {loss:.4f} val {shown}")
            return
        step = max(1, epochs // 10)
        if epoch % step == 0 or epoch == epochs:
            print(f"run {run} epoch {epoch}/{epochs}: loss {loss:.4f} val {shown}", file=sys.stderr)

    def note(self, msg: str):
        if self.enabled:
            print(msg, file=sys.stderr)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Run:
    """A training run's directory: its figures, and its models for inference.

    ``results`` holds one summary per run (``seed``, ``test``, ``best_val``,
    ``best_epoch``, …); ``test`` is their mean. ``predict``, ``predict_proba``, ``embed``,
    ``scores`` and ``pair_scores`` reload run ``run`` (default the first) once.
    """

    def __init__(self, path: PathLike, results: Optional[List[Dict[str, Any]]] = None,
                 tune: Optional[Dict[str, Any]] = None):
        self.path = Path(path)
        dirs = _native.run_dirs(str(self.path))
        if not dirs:
            raise ScalegnnError(f"{self.path}: no trained run here (no checkpoint, no run-N)")
        self.dirs = [Path(d) for d in dirs]
        if results is None:
            results = []
            for d in self.dirs:
                f = d / "result.json"
                if f.is_file():
                    results.append(json.loads(f.read_text()))
        self.results = results
        self.tune = tune
        self._models: Dict[int, Any] = {}

    @classmethod
    def open(cls, path: PathLike) -> "Run":
        """A run directory written by :func:`train` or ``scalegnn train``."""
        return cls(path)

    @property
    def metric(self) -> str:
        return self.results[0]["metric"] if self.results else ""

    @property
    def test(self) -> float:
        """The selection metric on the test split, mean over runs."""
        return float(np.mean([r["test"] for r in self.results]))

    @property
    def test_std(self) -> float:
        return float(np.std([r["test"] for r in self.results]))

    def model(self, run: int = 0):
        """Run ``run``'s best checkpoint, loaded once."""
        if run not in self._models:
            self._models[run] = _native.LoadedModel(str(self.dirs[run]))
        return self._models[run]

    def scores(self, run: int = 0) -> Dict[str, Dict[str, float]]:
        """Every metric of the task on train, val and test, scored on the whole graph with
        every neighbour (a neighbour-sampled run's own figures, ``test``, came from sampled
        evaluation fan-outs, so the two can differ)."""
        return json.loads(self.model(run).scores())

    def predict(self, run: int = 0) -> np.ndarray:
        """Class ids ``[N]`` (int64), or values for regression; one row per graph for
        graph-level runs."""
        return self.model(run).predict(False)

    def predict_proba(self, run: int = 0) -> np.ndarray:
        """Class probabilities ``[N, C]`` (float32)."""
        return self.model(run).predict(True)

    def embed(self, run: int = 0) -> np.ndarray:
        """Embeddings ``[N, d]`` (float32): a node's input to the last layer, or a graph's
        pooled row."""
        return self.model(run).embed()

    def pair_scores(self, pairs: Any, run: int = 0) -> np.ndarray:
        """A link prediction run's probability that each pair ``[m, 2]`` is an edge."""
        p = np.asarray(pairs)
        if p.ndim != 2 or p.shape[1] != 2:
            raise ScalegnnError(
                f"pairs: shape {p.shape}, expected [m, 2] (transpose PyG's [2, m] edge_label_index)"
            )
        return self.model(run).pair_scores(np.ascontiguousarray(p, dtype=np.int64))

    def __repr__(self) -> str:
        if not self.results:
            return f"Run({str(self.path)!r})"
        return (
            f"Run({str(self.path)!r}, runs={len(self.results)}, "
            f"test {self.metric}={self.test:.4f})"
        )


def train(
    dataset: Union[Dataset, PathLike],
    model: str = "gcn",
    out: Optional[PathLike] = None,
    *,
    progress: bool = True,
    tune: Optional[int] = None,
    force: bool = False,
    verify: bool = True,
    on_epoch: Optional[Callable[[int, int, int, float, Dict[str, float]], None]] = None,
    **config: Any,
) -> Run:
    """Trains ``model`` on ``dataset`` and returns the :class:`Run`.

    ``config`` takes the keys of ``scalegnn train --config`` (``hidden``, ``layers``,
    ``dropout``, ``lr``, ``weight_decay``, ``epochs``, ``seed``, ``runs``, ``loader``,
    ``fanouts``, ``task``, …); an unknown key raises :class:`ScalegnnError` naming it.
    ``tune=N`` first searches N trials on validation (as ``--tune``). ``out`` defaults to
    ``runs/<unix time>``; ``force`` replaces a run already there. ``on_epoch(run, epoch,
    epochs, loss, val_scores)`` is called after every epoch.
    """
    cfg = dict(config)
    cfg["dataset"] = os.fspath(dataset)
    cfg["model"] = model
    for k, v in list(cfg.items()):
        if isinstance(v, (np.integer,)):
            cfg[k] = int(v)
        elif isinstance(v, (np.floating,)):
            cfg[k] = float(v)
        elif isinstance(v, tuple):
            cfg[k] = list(v)
    if out is None:
        base = Path("runs") / str(int(time.time()))
        out, k = base, 2
        while Path(out).exists():
            out = base.with_name(f"{base.name}-{k}")
            k += 1
    bar = _Progress(progress)

    def epoch_cb(run, epoch, epochs, loss, val):
        bar.epoch(run, epoch, epochs, loss, val)
        if on_epoch is not None:
            on_epoch(run, epoch, epochs, loss, val)

    try:
        text = _native.train(
            json.dumps(cfg),
            os.fspath(out),
            force=force,
            tune_trials=tune,
            verify=verify,
            on_epoch=epoch_cb,
            on_note=bar.note,
        )
    finally:
        bar.close()
    got = json.loads(text)
    return Run(out, results=got["runs"], tune=got.get("tune"))
