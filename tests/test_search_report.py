"""Reports of a study (`nas pareto`): CSV, PNG and HTML from the storage alone."""
from nas.search import search

from conftest import run_cli
from helpers_search import fast_cfg


def test_pareto_unknown_study(tmp_path, capsys):
    cfg = fast_cfg(tmp_path, trials=2)
    search(cfg)
    rc, _, err = run_cli(capsys, "pareto", "--storage", cfg.storage, "--study", "other", "-o", tmp_path / "o")
    assert rc == 2 and "no study 'other'" in err and "studies: t" in err


def test_hypervolume_history_by_hand():
    import pandas as pd
    import pytest

    from nas.search.report import hypervolume_history

    df = pd.DataFrame({"trial": [0, 1, 2, 3], "p": [1.0, 2.0, 0.5, 3.0], "l": [2.0, 3.0, 1.0, 1.0],
                       "feasible": [True, True, True, False]})
    # maximise p, minimise l; reference from the feasible trials, 5 % of the span out: p 0.425, l 3.1
    # trial 0: 0.575 x 1.1; trial 1 adds [1, 2] x [3, 3.1]; trial 2 adds [0.425, 0.5] x [1, 2]; 3 is infeasible
    expected = [0.6325, 0.7325, 0.8075, 0.8075]
    assert hypervolume_history(df, ["p", "l"], ["maximize", "minimize"]) == pytest.approx(expected)


def test_report_errors_name_the_study_and_leave_matplotlib_alone(tmp_path, capsys, monkeypatch):
    import matplotlib
    import pytest

    from nas.errors import NasError
    from nas.search.report import write_report

    with pytest.raises(NasError, match="no architecture met the budget"):
        search(fast_cfg(tmp_path, trials=3, latency_budget_ms=0.5))
    storage = fast_cfg(tmp_path).storage
    with pytest.raises(NasError, match="study 't' has no feasible trial: the Pareto front is empty") as err:
        write_report(storage, "t", tmp_path / "o")
    assert err.value.argument == "study_name" and "--" not in str(err.value)
    rc, _, err_text = run_cli(capsys, "pareto", "--storage", storage, "--study", "t", "-o", tmp_path / "o")
    assert rc == 2 and err_text.startswith("nas: error: --study: study 't' has no feasible trial")
    monkeypatch.setattr(matplotlib, "use", lambda *a, **k: pytest.fail("the report switched matplotlib's backend"))
    search(fast_cfg(tmp_path, study="ok", trials=3))
    paths = write_report(storage, "ok", tmp_path / "ok")
    assert all(p.stat().st_size > 0 for p in paths.values())


def test_bit_columns_show_the_bit_mix_where_the_space_chooses_bits():
    import pandas as pd

    from nas.layers import bit_mix, plan
    from nas.search.report import add_bit_columns
    from nas.space import load_space

    space = load_space("mobilenet-c10")
    archs = space.sample_many(4, seed=2)
    df = pd.DataFrame({"arch": [space.format(a) for a in archs]})
    add_bit_columns(df, space)
    mix = bit_mix(plan(archs[0], space))
    assert df["mean_wbits"][0] == mix["mean_wbits"] and 4 <= df["mean_wbits"].min() < 32
    assert df["bit_mix"][0] == " ".join(f"{k}:{v}" for k, v in mix["convs"].items())
    fb = load_space("fbnet-c100")
    plain = pd.DataFrame({"arch": [fb.format(a) for a in fb.sample_many(3, seed=0)]})
    add_bit_columns(plain, fb)
    assert "bit_mix" not in plain  # every layer float: nothing to show
