"""The benchmark scripts the README quotes must not rot: one folder per family, each script run as a module from
the repository root, taking --out-dir and writing through the one harness; each starts and prints its usage."""
import subprocess
import sys

import pytest

from conftest import ROOT
from experiments import harness

SCRIPTS = sorted(p for p in (ROOT / "experiments").glob("*/*.py") if 'if __name__ == "__main__":' in p.read_text())


def _module(path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_every_family_has_its_scripts():
    assert {p.parent.name for p in SCRIPTS} == set(harness.FAMILIES)
    assert len(SCRIPTS) >= 20


@pytest.mark.parametrize("script", SCRIPTS, ids=_module)
def test_every_script_writes_through_the_harness(script):
    text = script.read_text()
    assert "add_out_dir(" in text and "write_results(" in text  # --out-dir, and stamped results files
    assert "sys.path" not in text  # the family packages import each other as experiments.<family>.<module>
    assert '"--out"' not in text  # --out-dir is the one way to say where results go


def test_results_live_in_the_family_folders():
    tracked = subprocess.run(["git", "ls-files", "experiments"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    results = [t for t in tracked if "/results/" in t]
    assert results and all(t.split("/")[1] in harness.FAMILIES and t.split("/")[2] == "results" for t in results)


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=_module)
def test_script_help(script):
    res = subprocess.run([sys.executable, "-m", _module(script), "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "usage:" in res.stdout and "--out-dir" in res.stdout
