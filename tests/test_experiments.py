"""The benchmark scripts the README quotes must not rot: each one starts and prints its usage."""
import subprocess
import sys

import pytest

from conftest import ROOT

SCRIPTS = sorted(p.name for p in (ROOT / "experiments").glob("*.py"))


def test_there_are_scripts():
    assert len(SCRIPTS) >= 9


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_script_help(script):
    res = subprocess.run([sys.executable, f"experiments/{script}", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "usage:" in res.stdout
