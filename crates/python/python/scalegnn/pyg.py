"""scalegnn's sampler and feature stores inside a PyG training loop.

:class:`NeighborLoader` yields mini-batches in the layout of PyG's ``NeighborLoader``: the
batch's nodes with its seeds first (``n_id``, ``batch_size``), the sampled edges in
batch-local ids (``edge_index``, neighbour → node, hop 1 first), per-hop counts
(``num_sampled_nodes``, ``num_sampled_edges``) and the nodes' feature rows ``x`` and labels
``y``. Batches are sampled, and their rows gathered from the dataset's feature store (mmap,
SQLite or PostgreSQL, any codec), on a worker thread ``prefetch`` batches ahead, so the
features never need to fit in memory. With ``torch_geometric`` installed a batch is a
``torch_geometric.data.Data`` (tensors share the arrays' memory); otherwise a
:class:`Batch` of NumPy arrays.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np

from . import _native
from ._native import ScalegnnError

__all__ = [
    "Batch",
    "Blocks",
    "NeighborLoader",
    "LinkNeighborLoader",
    "FeatureStore",
    "GraphStore",
    "stores",
]


class Batch:
    """A sampled mini-batch as NumPy arrays (the layout of PyG's ``NeighborLoader``)."""

    def __init__(self, fields: dict):
        self.n_id: np.ndarray = fields["n_id"]
        self.edge_index: np.ndarray = fields["edge_index"]
        self.num_sampled_nodes: np.ndarray = fields["num_sampled_nodes"]
        self.num_sampled_edges: np.ndarray = fields["num_sampled_edges"]
        self.batch_size: int = fields["batch_size"]
        self.x: Optional[np.ndarray] = fields.get("x")
        self.y: Optional[np.ndarray] = fields.get("y")
        self.edge_label_index: Optional[np.ndarray] = fields.get("edge_label_index")
        self.edge_label: Optional[np.ndarray] = fields.get("edge_label")

    @property
    def num_nodes(self) -> int:
        return len(self.n_id)

    def __repr__(self) -> str:
        return (
            f"Batch(nodes={self.num_nodes}, edges={self.edge_index.shape[1]}, "
            f"batch_size={self.batch_size})"
        )


class Blocks:
    """A mini-batch in the layer-wise form of PyG's ``NeighborSampler``: ``adjs`` holds one
    ``(edge_index, e_id, size)`` per layer, input layer first, ``size = (sources,
    destinations)`` and ids local to ``n_id`` (every layer's sources are a prefix of it, its
    destinations a prefix of its sources); ``e_id`` is None. With the rows ``x`` and ``y``.
    Unlike PyG's sampler, which draws a node's neighbours again for every layer, a node keeps
    the sample of the hop that reached it in every later layer (message-flow graphs, as DGL)."""

    def __init__(self, fields: dict, adjs: list):
        self.n_id = fields["n_id"]
        self.batch_size: int = fields["batch_size"]
        self.adjs = adjs
        self.x = fields.get("x")
        self.y = fields.get("y")

    def __iter__(self):
        # `batch_size, n_id, adjs = blocks`, as PyG's NeighborSampler yields.
        return iter((self.batch_size, self.n_id, self.adjs))

    def __repr__(self) -> str:
        sizes = [a[2] for a in self.adjs]
        return f"Blocks(nodes={len(self.n_id)}, batch_size={self.batch_size}, sizes={sizes})"


def _split(path: Path, name: str) -> np.ndarray:
    """The dataset's split ``name`` (its first split when it has several)."""
    f = path / f"{name}_idx.npy"
    if not f.is_file():
        raise ScalegnnError(f"{path}: no {name} split ({f.name})")
    a = np.load(f)
    if a.ndim == 2:
        a = a[0]
    return a[a >= 0].astype(np.int64)


class NeighborLoader:
    """Neighbour-sampled mini-batches of a scalegnn dataset, for a PyG model and loop.

    - ``dataset``: a dataset directory (or :class:`scalegnn.Dataset`).
    - ``num_neighbors``: neighbours per node and hop, hop 1 first (``-1``: all), as PyG's.
    - ``input_nodes``: the seeds: ``None`` (every node), ``"train"``/``"val"``/``"test"``
      (the dataset's split), a boolean mask or node ids.
    - ``batch_size``, ``shuffle`` (default False, as PyG's), ``seed`` (each pass ``k`` uses
      ``seed + k``: the same loader gives the same passes), ``prefetch`` (batches made ahead).
    - ``to``: ``"auto"`` (PyG ``Data`` when torch_geometric imports, else :class:`Batch`),
      ``"pyg"`` or ``"numpy"``.
    - ``layout``: ``"subgraph"`` (PyG's ``NeighborLoader``: one edge list) or ``"blocks"``
      (PyG's layer-wise ``NeighborSampler``: a :class:`Blocks` per batch, each layer only on
      the nodes later layers need).
    """

    def __init__(
        self,
        dataset: Union[str, "os.PathLike[str]"],
        num_neighbors: Sequence[int],
        batch_size: int = 1,
        input_nodes: Any = None,
        shuffle: bool = False,
        seed: int = 0,
        prefetch: int = 2,
        features: bool = True,
        labels: bool = True,
        to: str = "auto",
        layout: str = "subgraph",
    ):
        self.path = Path(os.fspath(dataset))
        if layout not in ("subgraph", "blocks"):
            raise ScalegnnError(f"layout={layout!r}: expected 'subgraph' or 'blocks'")
        self.layout = layout
        if to not in ("auto", "pyg", "numpy"):
            raise ScalegnnError(f"to={to!r}: expected 'auto', 'pyg' or 'numpy'")
        self.to = to
        if input_nodes is None:
            n = json_nodes(self.path)
            seeds = np.arange(n, dtype=np.int64)
        elif isinstance(input_nodes, str):
            seeds = _split(self.path, input_nodes)
        else:
            a = np.asarray(input_nodes)
            seeds = np.flatnonzero(a).astype(np.int64) if a.dtype == np.bool_ else a
        self.seeds = np.ascontiguousarray(seeds, dtype=np.int64)
        self.num_neighbors = [int(v) for v in num_neighbors]
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.prefetch = int(prefetch)
        self.features = features
        self.labels = labels
        self.passes = 0
        if (self.path / "edge_attr.npy").is_file():
            import warnings

            warnings.warn(f"{self.path}/edge_attr.npy: edge features are not in these batches "
                          "(the loader gives node rows only)", stacklevel=2)
        self._data_cls = None
        if to != "numpy":
            try:
                import torch  # noqa: F401
                from torch_geometric.data import Data

                self._data_cls = Data
            except ImportError:
                if to == "pyg":
                    raise ScalegnnError("to='pyg' needs torch and torch_geometric installed")

    def __len__(self) -> int:
        return math.ceil(len(self.seeds) / max(self.batch_size, 1))

    def __iter__(self) -> Iterator[Any]:
        # Pass k draws with seed + k; the files are checked on the first pass, not every epoch.
        common = dict(shuffle=self.shuffle, seed=self.seed + self.passes, prefetch=self.prefetch,
                      features=self.features, labels=self.labels, verify=self.passes == 0)
        stream = self._stream(common)
        self.passes += 1
        for fields in stream:
            yield self._convert(fields)

    def _stream(self, common: dict):
        return _native.neighbor_stream(str(self.path), self.seeds, self.num_neighbors,
                                       self.batch_size, blocks=self.layout == "blocks", **common)

    def _convert(self, f: dict) -> Any:
        if "adjs" in f:
            if self._data_cls is None:
                return Blocks(f, [(ei, None, size) for ei, size in f["adjs"]])
            import torch

            t = {k: torch.from_numpy(f[k]) for k in ("n_id", "x", "y") if k in f}
            try:  # PyG's own named tuple, with `.to(device)`
                from torch_geometric.loader.neighbor_sampler import EdgeIndex
            except ImportError:  # pragma: no cover - older or newer PyG
                EdgeIndex = tuple  # noqa: N806
            adjs = [EdgeIndex(torch.from_numpy(ei), None, size) for ei, size in f["adjs"]]
            # PyG's NeighborSampler gives one EdgeIndex, not a list, for one layer.
            return Blocks({**f, **t}, adjs[0] if len(adjs) == 1 else adjs)
        if self._data_cls is None:
            return Batch(f)
        import torch

        kw = {
            "edge_index": torch.from_numpy(f["edge_index"]),
            "n_id": torch.from_numpy(f["n_id"]),
            "batch_size": f["batch_size"],
            "num_sampled_nodes": f["num_sampled_nodes"].tolist(),
            "num_sampled_edges": f["num_sampled_edges"].tolist(),
        }
        if "x" in f:
            kw["x"] = torch.from_numpy(f["x"])
        if "y" in f:
            kw["y"] = torch.from_numpy(f["y"])
        if "edge_label_index" in f:
            kw["edge_label_index"] = torch.from_numpy(f["edge_label_index"])
            kw["edge_label"] = torch.from_numpy(f["edge_label"])
        data = self._data_cls(**kw)
        data.num_nodes = len(f["n_id"])
        return data


class LinkNeighborLoader(NeighborLoader):
    """Link mini-batches in the layout of PyG's ``LinkNeighborLoader``: each batch holds
    ``batch_size`` of the given pairs and ``round(batch_size × neg_sampling_ratio)`` negative
    pairs drawn for it (``neg_sampling`` ``"uniform"``, or ``"degree"``: destination ∝
    degree^0.75; negatives avoid the given pairs), the sampled neighbourhoods of all their
    endpoints, and ``edge_label_index`` (``[2, pairs]`` in batch-local ids) with
    ``edge_label`` (1 for given pairs, 0 for negatives).

    ``edge_label_index``: ``[2, m]`` node ids (PyG's layout; a ``2 × 2`` array is read so),
    ``[m, 2]``, or ``"train"``/``"val"``/``"test"``: the dataset's ``link_<split>_pos.npy``,
    and for ``"val"``/``"test"`` also its fixed ``link_<split>_neg.npy`` (labelled 0; no
    negatives drawn). Messages pass over the graph without the dataset's validation and test
    edges, as ``scalegnn train --task link`` does. A batch's ``batch_size`` is its seed count
    (the pairs' distinct endpoints), not its pair count: ``len(edge_label)`` is that.
    """

    def __init__(
        self,
        dataset: Union[str, "os.PathLike[str]"],
        num_neighbors: Sequence[int],
        edge_label_index: Any = "train",
        batch_size: int = 1,
        neg_sampling_ratio: float = 1.0,
        neg_sampling: str = "uniform",
        shuffle: bool = False,
        seed: int = 0,
        prefetch: int = 2,
        features: bool = True,
        labels: bool = True,
        to: str = "auto",
    ):
        super().__init__(dataset, num_neighbors, batch_size=batch_size, input_nodes=[],
                         shuffle=shuffle, seed=seed, prefetch=prefetch, features=features,
                         labels=labels, to=to)
        self.pair_labels = None
        if isinstance(edge_label_index, str):
            f = self.path / f"link_{edge_label_index}_pos.npy"
            if not f.is_file():
                raise ScalegnnError(f"{self.path}: no {edge_label_index} pairs ({f.name}); "
                                    "scalegnn split-edges makes them")
            pairs = np.load(f)
            neg = self.path / f"link_{edge_label_index}_neg.npy"
            if edge_label_index != "train" and neg.is_file():
                negs = np.load(neg)
                self.pair_labels = np.concatenate(
                    [np.ones(len(pairs), np.float32), np.zeros(len(negs), np.float32)])
                pairs = np.concatenate([pairs, negs])
        else:
            pairs = np.asarray(edge_label_index)
            if pairs.ndim == 2 and pairs.shape[0] == 2:
                pairs = pairs.T  # PyG's [2, m] (also when m is 2)
        if pairs.ndim != 2 or pairs.shape[1] != 2:
            raise ScalegnnError(f"edge_label_index: shape {pairs.shape}, expected [2, m] or [m, 2]")
        self.pairs = np.ascontiguousarray(pairs, dtype=np.int64)
        self.neg_sampling_ratio = float(neg_sampling_ratio)
        self.neg_sampling = neg_sampling

    def __len__(self) -> int:
        return math.ceil(len(self.pairs) / max(self.batch_size, 1))

    def _stream(self, common: dict):
        return _native.link_stream(str(self.path), self.pairs, self.num_neighbors,
                                   self.batch_size, pair_labels=self.pair_labels,
                                   neg_ratio=self.neg_sampling_ratio, neg_kind=self.neg_sampling,
                                   **common)


def json_nodes(path: Path) -> int:
    """The dataset's node count, from its manifest."""
    import json

    return int(json.loads((path / "manifest.json").read_text())["num_nodes"])


def stores(dataset: Union[str, "os.PathLike[str]"]):
    """``(FeatureStore, GraphStore)`` of a dataset, for PyG's loaders::

        from torch_geometric.loader import NeighborLoader
        loader = NeighborLoader(scalegnn.pyg.stores("data/products"), num_neighbors=[15, 10],
                                batch_size=1024, input_nodes=train_idx)

    PyG samples over the graph (held as tensors) and asks the feature store for each batch's
    rows, which scalegnn reads from its store (mmap, SQLite or PostgreSQL, any codec)."""
    return FeatureStore(dataset), GraphStore(dataset)


def _pyg_bases():
    try:
        import torch  # noqa: F401
        from torch_geometric.data import FeatureStore as PygFeatureStore
        from torch_geometric.data import GraphStore as PygGraphStore
    except ImportError as e:  # pragma: no cover - exercised without torch
        raise ScalegnnError("scalegnn.pyg stores need torch and torch_geometric installed") from e
    return PygFeatureStore, PygGraphStore


def FeatureStore(dataset: Union[str, "os.PathLike[str]"]):
    """PyG's ``FeatureStore`` over a scalegnn dataset: node attributes ``x`` (the feature store,
    rows read per request) and ``y`` (labels, memory-mapped). Read-only."""
    base, _ = _pyg_bases()
    import torch
    from torch_geometric.data import TensorAttr

    path = Path(os.fspath(dataset))

    class _FeatureStore(base):
        def __init__(self):
            super().__init__()
            self.rows = _native.FeatureRows(str(path))
            y = path / "y.npy"
            self.y = np.load(y, mmap_mode="r") if y.is_file() else None

        def _put_tensor(self, tensor, attr) -> bool:
            return False  # read-only: the dataset directory is written by ingest

        def _remove_tensor(self, attr) -> bool:
            return False

        def _get_tensor(self, attr):
            index = attr.index
            if isinstance(index, slice) or index is None:
                n = self.rows.shape[0]
                index = np.arange(n)[index if isinstance(index, slice) else slice(None)]
            idx = np.ascontiguousarray(np.asarray(index), dtype=np.int64)
            if attr.attr_name == "x":
                return torch.from_numpy(self.rows.gather(idx))
            if attr.attr_name == "y" and self.y is not None:
                return torch.from_numpy(np.array(self.y[idx]))
            return None

        def _get_tensor_size(self, attr):
            if attr.attr_name == "x":
                return tuple(self.rows.shape)
            if attr.attr_name == "y" and self.y is not None:
                return tuple(self.y.shape)
            return None

        def get_all_tensor_attrs(self):
            attrs = [TensorAttr(group_name=None, attr_name="x")]
            if self.y is not None:
                attrs.append(TensorAttr(group_name=None, attr_name="y"))
            return attrs

    return _FeatureStore()


def GraphStore(dataset: Union[str, "os.PathLike[str]"]):
    """PyG's ``GraphStore`` over a scalegnn dataset's CSR: its rows are each node's
    in-neighbours, which is PyG's CSC layout (``colptr`` = indptr, ``row`` = indices), handed
    over without conversion (int64 copies of the arrays, as PyG's samplers require)."""
    _, base = _pyg_bases()
    import torch
    from torch_geometric.data import EdgeAttr

    path = Path(os.fspath(dataset))

    class _GraphStore(base):
        def __init__(self):
            super().__init__()
            self.colptr = torch.from_numpy(np.load(path / "indptr.npy").astype(np.int64))
            self.row = torch.from_numpy(np.load(path / "indices.npy").astype(np.int64))
            self.n = int(self.colptr.numel() - 1)

        def _put_edge_index(self, edge_index, edge_attr) -> bool:
            return False

        def _remove_edge_index(self, edge_attr) -> bool:
            return False

        def _get_edge_index(self, edge_attr):
            if edge_attr.layout.value == "csc":
                return self.row, self.colptr
            return None

        def get_all_edge_attrs(self):
            return [EdgeAttr(edge_type=None, layout="csc", is_sorted=True, size=(self.n, self.n))]

    return _GraphStore()
