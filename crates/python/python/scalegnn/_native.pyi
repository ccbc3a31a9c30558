"""Type stubs of the extension module (crates/python/src/lib.rs)."""

from os import PathLike
from typing import Any, Callable, Dict, List, Optional, Union

import numpy as np

__version__: str

class ScalegnnError(Exception):
    """An error from scalegnn; the message names the file, row or key at fault."""

def ingest_arrays(
    out: Union[str, PathLike[str]],
    src: np.ndarray,
    dst: np.ndarray,
    *,
    num_nodes: Optional[int] = ...,
    x: Optional[np.ndarray] = ...,
    y: Optional[np.ndarray] = ...,
    y_values: Optional[np.ndarray] = ...,
    train: Optional[np.ndarray] = ...,
    val: Optional[np.ndarray] = ...,
    test: Optional[np.ndarray] = ...,
    edge_attr: Optional[np.ndarray] = ...,
    graph_ptr: Optional[np.ndarray] = ...,
    graph_y: Optional[np.ndarray] = ...,
    graph_y_values: Optional[np.ndarray] = ...,
    undirected: bool = ...,
    name: Optional[str] = ...,
    split: Optional[str] = ...,
    seed: int = ...,
    force: bool = ...,
    degree_features: bool = ...,
) -> str: ...
def ingest_files(
    input: Union[str, PathLike[str]],
    out: Union[str, PathLike[str]],
    format: str,
    *,
    undirected: bool = ...,
    name: Optional[str] = ...,
    split: Optional[str] = ...,
    seed: int = ...,
    force: bool = ...,
    relabel: bool = ...,
    degree_features: bool = ...,
    table: Optional[Dict[str, Any]] = ...,
) -> str: ...
def dataset_manifest(path: Union[str, PathLike[str]]) -> str: ...
def split_edges(
    path: Union[str, PathLike[str]],
    *,
    link_split: str = ...,
    negatives: int = ...,
    seed: int = ...,
    force: bool = ...,
) -> str: ...
def train(
    config_json: str,
    out: Union[str, PathLike[str]],
    *,
    force: bool = ...,
    tune_trials: Optional[int] = ...,
    verify: bool = ...,
    on_epoch: Optional[Callable[[int, int, int, float, Dict[str, float]], Any]] = ...,
    on_note: Optional[Callable[[str], Any]] = ...,
) -> str: ...
def run_dirs(path: Union[str, PathLike[str]]) -> List[str]: ...

class LoadedModel:
    """One trained run's best checkpoint, with its dataset."""

    def __init__(self, path: Union[str, PathLike[str]], dataset: Optional[str] = ...) -> None: ...
    @property
    def items(self) -> int: ...
    @property
    def checkpoint_epoch(self) -> int: ...
    def scores(self) -> str: ...
    def predict(self, proba: bool = ...) -> np.ndarray: ...
    def embed(self) -> np.ndarray: ...
    def pair_scores(self, pairs: np.ndarray) -> np.ndarray: ...

class BatchStream:
    """One pass of neighbour-sampled batches (dicts of NumPy arrays in PyG's layout)."""

    def __iter__(self) -> "BatchStream": ...
    def __next__(self) -> Dict[str, Any]: ...

def neighbor_stream(
    path: Union[str, PathLike[str]],
    seeds: np.ndarray,
    fanouts: List[int],
    batch_size: int,
    *,
    shuffle: bool = ...,
    seed: int = ...,
    prefetch: int = ...,
    features: bool = ...,
    labels: bool = ...,
    verify: bool = ...,
    blocks: bool = ...,
) -> BatchStream: ...

class FeatureRows:
    """A dataset's feature store opened for row reads."""

    def __init__(self, path: Union[str, PathLike[str]]) -> None: ...
    @property
    def shape(self) -> tuple: ...
    def gather(self, ids: np.ndarray) -> np.ndarray: ...

def link_stream(
    path: Union[str, PathLike[str]],
    pairs: np.ndarray,
    fanouts: List[int],
    batch_size: int,
    *,
    pair_labels: Optional[np.ndarray] = ...,
    neg_ratio: float = ...,
    neg_kind: str = ...,
    shuffle: bool = ...,
    seed: int = ...,
    prefetch: int = ...,
    features: bool = ...,
    labels: bool = ...,
    verify: bool = ...,
) -> BatchStream: ...
