"""Shared helpers: a planted-partition graph built with NumPy, and where the repository is."""

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("SCALEGNN_SHARED", REPO.parent / "shared"))


def planted(n=300, classes=3, seed=0):
    """Two-way dense blocks: nodes link mostly within their class; features are a noisy
    one-hot of the class, so a GNN that averages neighbours separates them."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    src, dst = [], []
    for _ in range(6 * n):
        a = rng.integers(n)
        same = rng.random() < 0.9
        cand = np.flatnonzero((y == y[a]) if same else (y != y[a]))
        b = cand[rng.integers(len(cand))]
        if a != b:
            src.append(a)
            dst.append(b)
    x = (np.eye(classes)[y] + rng.normal(0, 1.5, (n, classes))).astype(np.float32)
    order = rng.permutation(n)
    train = np.zeros(n, bool)
    val = np.zeros(n, bool)
    test = np.zeros(n, bool)
    train[order[: n // 5]] = True
    val[order[n // 5 : 2 * n // 5]] = True
    test[order[2 * n // 5 :]] = True
    return np.array([src, dst], dtype=np.int64), x, y.astype(np.int64), train, val, test


@pytest.fixture
def graph():
    return planted()


def cli_binary():
    """The command line built beside the package (cargo test builds target/debug), or
    $SCALEGNN_BIN."""
    if os.environ.get("SCALEGNN_BIN"):
        return os.environ["SCALEGNN_BIN"]
    for p in (REPO / "target" / "debug" / "scalegnn", REPO / "target" / "release" / "scalegnn"):
        if p.is_file():
            return str(p)
    return None
