"""experiments/harness.py: one meaning of --out-dir, and every results file stamped with its run."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT
from experiments import harness


def test_out_dir_is_a_folder_defaulting_to_the_familys_results():
    p = argparse.ArgumentParser()
    harness.add_out_dir(p, "quant", name="quant_truth")
    args = p.parse_args([])
    assert args.out_dir == ROOT / "experiments" / "quant" / "results" and args.name == "quant_truth"
    assert "default experiments/quant/results" in " ".join(p.format_help().split())
    args = p.parse_args(["--out-dir", "/tmp/x", "--name", "quant_truth_retrain"])
    assert str(args.out_dir) == "/tmp/x" and args.name == "quant_truth_retrain"


def test_an_unknown_family_is_refused():
    with pytest.raises(ValueError, match="unknown experiments family 'quantum'"):
        harness.results_dir("quantum")


def test_write_results_stamps_the_csv_json_and_md(tmp_path):
    s = harness.write_results(tmp_path / "out", "bench", rows=[{"a": 1}, {"a": 2}], summary={"median": 1.5},
                              md="# A title\n\nbody line\n", files=[tmp_path / "out" / "extra.csv"])
    out = tmp_path / "out"
    assert list(pd.read_csv(out / "bench.csv")["a"]) == [1, 2]
    doc = json.loads((out / "bench.json").read_text())
    assert doc["median"] == 1.5 and doc["files"] == ["bench.csv", "bench.md", "extra.csv"]
    stamp = doc["stamp"]
    for key in ("command", "commit", "dirty", "date", "host", "host_fingerprint", "load", "load_at_start",
                "seconds", "versions"):
        assert key in stamp, key
    assert stamp["host_fingerprint"]["logical_cores"] > 0 and stamp["host"] != "unknown"
    assert set(stamp["versions"]) == {"python", "torch", "onnxruntime", "optuna", "numpy"}
    assert stamp["versions"]["torch"] and stamp["commit"] != "unknown (not a git checkout)"
    md = (out / "bench.md").read_text().split("\n")
    assert md[0] == "# A title" and md[2] == harness.stamp_line(s) and "body line" in md
    assert stamp == s


def test_a_resumed_run_keeps_the_earlier_stamps(tmp_path):
    first = harness.write_results(tmp_path, "r", summary={"units": 1})
    harness.write_results(tmp_path, "r", summary={"units": 2}, resumed=True)
    harness.write_results(tmp_path, "r", summary={"units": 3}, resumed=True)
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["units"] == 3 and len(doc["earlier_stamps"]) == 2 and doc["earlier_stamps"][0] == first
    harness.write_results(tmp_path, "r", summary={"units": 4})  # a fresh run: its stamp alone
    assert "earlier_stamps" not in json.loads((tmp_path / "r.json").read_text())


def test_a_summary_may_not_overwrite_the_stamp(tmp_path):
    with pytest.raises(ValueError, match="stamp"):
        harness.write_results(tmp_path, "r", summary={"stamp": "mine"})


@pytest.mark.slow
def test_a_script_run_as_a_module_stamps_its_own_command(tmp_path):
    """A real benchmark (table lookups only) run the documented way writes to --out-dir, stamped."""
    res = subprocess.run([sys.executable, "-m", "experiments.latency.bits_pay_check", "--n", "3",
                          "--out-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "bits_pay_check.json").read_text())
    assert doc["stamp"]["command"] == f"python -m experiments.latency.bits_pay_check --n 3 --out-dir {tmp_path}"
    assert (tmp_path / "bits_pay_check.md").read_text().split("\n")[2].startswith(
        "`python -m experiments.latency.bits_pay_check --n 3")
