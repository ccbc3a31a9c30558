"""docs/python.md's example, run as written, against the command line on the same data."""

import re
import subprocess

import pytest

import scalegnn
from conftest import REPO, SHARED, cli_binary

CORA = SHARED / "datasets" / "planetoid-npy" / "cora"


def test_docs_example_matches_the_cli(tmp_path, monkeypatch):
    if not CORA.is_dir():
        pytest.skip(f"{CORA} is absent (the shared datasets)")
    text = (REPO / "docs" / "python.md").read_text()
    block = re.search(r"## Cora from NumPy arrays.*?```python\n(.*?)```", text, re.S).group(1)
    assert '"../shared/datasets/planetoid-npy/cora"' in block
    code = block.replace('"../shared/datasets/planetoid-npy/cora"', repr(str(CORA)))
    monkeypatch.chdir(tmp_path)
    env = {}
    exec(compile(code, "docs/python.md", "exec"), env)
    run = env["run"]
    assert run.test > 0.75, run.test
    assert env["pred"].shape == (2708,) and env["emb"].shape == (2708, 16)
    cli = cli_binary()
    if cli is None:
        pytest.skip("no scalegnn binary (cargo build) to compare with")
    out = subprocess.run(
        [cli, "train", str(tmp_path / "data" / "cora"), "--model", "gcn", "--epochs", "200",
         "--seed", "0", "--out", str(tmp_path / "cli")],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    cli_run = scalegnn.Run.open(tmp_path / "cli")
    assert cli_run.test == run.test, (cli_run.test, run.test)
