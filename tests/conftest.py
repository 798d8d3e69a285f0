import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = ROOT / "tests" / "data"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def user_tables_dir(tmp_path_factory, monkeypatch):
    """Every test writes its own tables into a fresh folder, never into the developer's or CI's home."""
    d = tmp_path_factory.mktemp("user-tables")
    monkeypatch.setenv("NAS_TABLES_DIR", str(d))
    return d


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny networks gain nothing from intra-op threads, and on a shared 2-core CI machine a second thread
    made tests several times slower (measured: 2 threads 3.3 s vs 1 thread 0.5 s per model under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data when present (development machines); tests that need it skip elsewhere."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available on this machine")
    return SHARED_DATA


def run_cli(capsys, *argv):
    """Run the `nas` CLI in-process; returns (exit code, stdout, stderr)."""
    from nas.cli import main

    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


TINY_TRAIN_YAML = """\
name: tiny-train
description: Small space for training tests.
input: {resolution: 8, channels: 1}
num_classes: 10
block: {op: ir, kernel: 3, expand: [1, 2], act: relu}
stem:
  - {op: conv, kernel: 3, stride: 1, width: 8, act: relu}
stages:
  - {width: 16, depth: 1, stride: 2}
head:
  - {op: pool}
  - {op: linear}
"""


@pytest.fixture(scope="module")
def train_space(tmp_path_factory):
    """An 8-px, one-channel space whose networks train on digits in a second (training and train:E tests)."""
    from nas.space import load_space

    p = tmp_path_factory.mktemp("spaces") / "tiny_train.yaml"
    p.write_text(TINY_TRAIN_YAML)
    return load_space(p)
