"""`nas score`: the output file is checked before any architecture is scored."""
import sys

import pandas as pd
import pytest

from conftest import TEST_DATA, run_cli
from nas.proxies import Scorer


@pytest.fixture
def archs_csv(tmp_path):
    path = tmp_path / "in.csv"
    pd.read_csv(TEST_DATA / "nas_bench_macro_dev.csv", dtype={"arch": str}).head(3)[["arch"]].to_csv(path, index=False)
    return path


@pytest.fixture
def scored(monkeypatch):
    """Records every call of the real Scorer.score_many (the work a bad -o must not wait for)."""
    calls, real = [], Scorer.score_many

    def spy(self, *args, **kwargs):
        calls.append(len(args[0]) if args else 0)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Scorer, "score_many", spy)
    return calls


def score(capsys, archs, out):
    return run_cli(capsys, "score", "--space", "nas-bench-macro", "--archs", archs, "--proxy", "synflow",
                   "--data", "noise", "--quiet", "-o", out)


def test_item12_parquet_without_an_engine_is_refused_before_scoring(tmp_path, archs_csv, capsys, monkeypatch,
                                                                      scored):
    for engine in ("pyarrow", "fastparquet"):  # as on a machine without either (None in sys.modules: not importable)
        monkeypatch.setitem(sys.modules, engine, None)
    rc, _, err = score(capsys, archs_csv, tmp_path / "x.parquet")
    assert rc == 2 and err.startswith("nas: error: --output: writing Parquet needs pyarrow or fastparquet"), err
    assert f"--output {tmp_path / 'x.csv'}" in err and err.count("\n") == 1
    assert scored == [] and not (tmp_path / "x.parquet").exists()


@pytest.mark.parametrize("where", ["folder", "under_a_file", "the_input"])
def test_item12_an_unwritable_output_is_refused_before_scoring(tmp_path, archs_csv, capsys, scored, where):
    (tmp_path / "afile").write_text("x")
    out = {"folder": tmp_path, "under_a_file": tmp_path / "afile" / "o.csv", "the_input": archs_csv}[where]
    before = archs_csv.read_text()
    rc, _, err = score(capsys, archs_csv, out)
    assert rc == 2 and err.startswith("nas: error: --output: "), err
    assert {"folder": "is a folder", "under_a_file": "is a file", "the_input": "overwrite the input"}[where] in err
    assert scored == [] and archs_csv.read_text() == before


def test_a_writable_output_gets_every_row(tmp_path, archs_csv, capsys, scored):
    rc, out, err = score(capsys, archs_csv, tmp_path / "new" / "s.csv")
    assert rc == 0, err
    res = pd.read_csv(tmp_path / "new" / "s.csv", dtype={"arch": str})
    assert len(res) == 3 and scored == [3] and res["synflow"].notna().all()
