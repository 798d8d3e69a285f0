"""Scorer and `nas score`: columns, errors, train:E."""
import math

import pandas as pd
import pytest

from nas.errors import NasError
from nas.proxies import Scorer

from conftest import run_cli
from helpers_proxies import FLOAT, tiny  # noqa: F401  (fixtures)

@pytest.fixture(scope="module")
def space(train_space):
    return train_space


# --------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------
def test_cli_score_writes_columns(tiny, tmp_path, capsys):
    inp = tmp_path / "in.csv"
    pd.DataFrame({"arch": [FLOAT, "ir_e2_hswish_w4_a8", FLOAT]}).to_csv(inp, index=False)
    out = tmp_path / "out.csv"
    rc, stdout, err = run_cli(capsys, "score", "--space", tiny.path, "--archs", inp, "--proxy", "macs,synflow",
                              "--data", "digits", "--seed", "1", "--quiet", "-o", out)
    assert rc == 0, err
    df = pd.read_csv(out)
    assert list(df.columns) == ["arch", "canonical", "macs", "synflow", "score"]
    assert len(df) == 3 and df["score"].notna().all()
    assert df.loc[0, "synflow"] == df.loc[2, "synflow"]
    assert "wrote 3 rows" in stdout


def test_cli_score_errors(tiny, tmp_path, capsys):
    inp = tmp_path / "in.csv"
    pd.DataFrame({"arch": [FLOAT]}).to_csv(inp, index=False)
    rc, _, err = run_cli(capsys, "score", "--space", tiny.path, "--archs", inp, "--proxy", "nasw0t",
                         "-o", tmp_path / "o.csv")
    assert rc == 2 and "unknown proxy 'nasw0t'" in err and len(err.strip().splitlines()) == 1
    pd.DataFrame({"arch": ["ir_e9"]}).to_csv(inp, index=False)
    rc, _, err = run_cli(capsys, "score", "--space", tiny.path, "--archs", inp, "--proxy", "macs",
                         "-o", tmp_path / "o.csv")
    assert rc == 2 and "row 1" in err
    rc, out, _ = run_cli(capsys, "score", "--list")
    assert rc == 0 and "(default: float spaces)" in out and "(default: spaces with bit choices)" in out



def test_train_proxy_through_scorer(space):
    s = Scorer(space, ["train:1"], data="digits", train_options={"n_train": 300, "n_val": 200})
    v = s.score("ir_e1")["train:1"]
    assert 0.0 <= v <= 1.0 and not math.isnan(v)
    with pytest.raises(NasError, match="train:EPOCHS"):
        Scorer(space, ["train:0"])


def test_item16_an_ensemble_reference_with_fewer_than_two_finite_values_is_an_error(tiny, tmp_path):
    """40 identical images: naswot is NaN on every reference architecture, and the ensemble silently
    standardised it with (0, 1). Now an error naming the component, the count, the space, data and seed."""
    import numpy as np

    data = tmp_path / "same.npz"
    np.savez(data, x=np.full((40, 6, 6), 128, np.uint8), y=np.array([0, 1] * 20))
    s = Scorer(tiny, ["ensemble"], data=str(data))
    with pytest.raises(NasError, match=r"^argument 'proxies': ensemble: 'naswot' is finite on 0 of the 32 reference "
                                       rf"architectures \(space tiny, data '{data}', seed 0\); standardising needs 2"):
        s.score(FLOAT)


def test_item15_the_scorer_cache_keeps_the_last_cache_size_architectures(tiny, monkeypatch):
    """The per-architecture cache grew by one entry per architecture ever scored (a long `nas score` list or
    search); now it keeps the last CACHE_SIZE. A recent architecture is not scored again; an evicted one is, to
    the same values."""
    import nas.proxies.scorer as scorer_module

    monkeypatch.setattr(scorer_module, "CACHE_SIZE", 8)
    s = Scorer(tiny, ["synflow", "naswot"], data="digits")
    probes = []
    real = s._probe
    s._probe = lambda arch, values: probes.append(tiny.format(arch)) or real(arch, values)
    archs = list(dict.fromkeys(tiny.format(a) for a in tiny.sample_many(60, seed=0)))[:20]
    first = [s.score(a) for a in archs]
    assert len(s._cache) == 8 and len(probes) == 20
    assert s.score(archs[-1]) == first[-1] and len(probes) == 20  # recent: from the cache
    assert s.score(archs[0]) == first[0] and probes[-1] == archs[0]  # evicted: scored again, the same values
    assert len(s._cache) == 8


def test_item15_a_search_scores_each_network_once_with_a_tiny_scorer_cache(monkeypatch):
    """A search does not rely on the scorer's bounded cache: its evaluator keeps one entry per scored network."""
    import nas.proxies.scorer as scorer_module
    from nas.latency.load import load
    from nas.search.run import create_search
    from nas.space import load_space

    monkeypatch.setattr(scorer_module, "CACHE_SIZE", 1)
    space = load_space("nas-bench-macro")
    scored = []
    scorer = Scorer(space, ["params"], data="noise")
    real = scorer.score
    scorer.score = lambda arch: scored.append(space.format(arch)) or real(arch)
    s = create_search(space, latency=[load("x86-2vcpu", dtype="fp32")], scorer=scorer, sampler="random",
                      trials=60)
    s.optimize(60)
    networks = [s.evaluator.network(space.parse(t.user_attrs["arch"])) for t in s.study.trials]
    assert len(scored) == len(set(s.evaluator.network(space.parse(a)) for a in scored)) == len(set(networks))
