import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = ROOT / "tests" / "data"
SHARED_DATA = ROOT.parent / "shared" / "data"


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
