"""`nas search` / `nas pareto`: real studies on the shipped FBNet tables with a cheap proxy."""
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from nas import NasError
from nas.search.front import pareto_mask
from nas.search.report import write_report
from nas.search.run import SearchConfig, search

from conftest import ROOT, run_cli

FAST = dict(space="fbnet-c100", devices=["raspi4"], proxy="params", data="noise")


def _cfg(tmp_path, **kw):
    opts = {**FAST, "storage": f"journal:///{tmp_path}/s.journal", "study": "t", "trials": 30, **kw}
    return SearchConfig(**opts)


def _trials(storage, study="t"):
    from nas.search.storage import open_storage

    return optuna.load_study(study_name=study, storage=open_storage(storage, heartbeat=False)).get_trials()


def test_pareto_mask():
    v = np.array([[1.0, 5.0], [2.0, 4.0], [1.5, 6.0], [0.5, 1.0]])
    # maximize first, minimize second
    assert pareto_mask(v, ["maximize", "minimize"]).tolist() == [False, True, False, True]


def test_search_stores_everything_and_respects_budget(tmp_path):
    cfg = _cfg(tmp_path, latency_budget_ms=30.0, devices=["raspi4", "pixel3"])
    summary = search(cfg)
    assert summary.trials >= 30 and summary.feasible > 0
    trials = [t for t in _trials(cfg.storage) if t.state == TrialState.COMPLETE]
    t = trials[0]
    assert {"arch", "metrics", "provenance"} <= set(t.user_attrs)
    m = t.user_attrs["metrics"]
    for key in ("latency_ms.raspi4", "latency_ms.pixel3", "proxy.params", "size_mb", "macs", "params", "feasible"):
        assert key in m
    assert t.user_attrs["provenance"]["latency_tables"]["raspi4"]["device"] == "raspi4"
    # feasibility is exactly the budget on every device
    for t in trials:
        m = t.user_attrs["metrics"]
        assert m["feasible"] == (m["latency_ms.raspi4"] <= 30.0 and m["latency_ms.pixel3"] <= 30.0)
    out = write_report(cfg.storage, "t", tmp_path / "report")
    front = pd.read_csv(out["pareto.csv"])
    assert len(front) >= 1 and (front["latency_ms.raspi4"] <= 30.0).all() and (front["latency_ms.pixel3"] <= 30.0).all()
    for name in ("pareto.png", "hypervolume.png", "pareto.html"):
        assert out[name].stat().st_size > 10_000
    # no front member is dominated by a feasible trial
    df = pd.read_csv(out["trials.csv"])
    feas = df[df["feasible"]]
    for _, row in front.iterrows():
        better = ((feas["proxy.params"] >= row["proxy.params"]) & (feas["latency_ms.raspi4"] <= row["latency_ms.raspi4"])
                  & (feas["latency_ms.pixel3"] <= row["latency_ms.pixel3"]))
        strictly = better & ((feas["proxy.params"] > row["proxy.params"]) | (feas["latency_ms.raspi4"] < row["latency_ms.raspi4"])
                             | (feas["latency_ms.pixel3"] < row["latency_ms.pixel3"]))
        assert not strictly.any()


def test_rerunning_resumes_instead_of_restarting(tmp_path):
    cfg = _cfg(tmp_path, trials=12)
    search(cfg)
    first = {t.number: t.user_attrs["arch"] for t in _trials(cfg.storage)}
    cfg.trials = 20
    search(cfg)
    after = {t.number: t.user_attrs.get("arch") for t in _trials(cfg.storage)}
    assert len([1 for t in _trials(cfg.storage) if t.state == TrialState.COMPLETE]) >= 20
    assert all(after[n] == a for n, a in first.items())  # earlier trials kept as they were


def test_changed_options_refuse_to_mix_into_a_study(tmp_path):
    cfg = _cfg(tmp_path, trials=3)
    search(cfg)
    with pytest.raises(NasError, match="created with latency_budget_ms=None"):
        search(_cfg(tmp_path, trials=3, latency_budget_ms=10.0))


def test_impossible_budget_reports_smallest_latency(tmp_path):
    with pytest.raises(NasError, match=r"no architecture met the budget in \d+ trials \(smallest latency seen: raspi4 \d+\.\d+ ms"):
        search(_cfg(tmp_path, trials=25, latency_budget_ms=0.5))


def test_identical_architectures_are_scored_once(tmp_path):
    cfg = _cfg(tmp_path)
    from nas.search.run import search_from_config
    from nas.space import load_space

    ev = search_from_config(cfg).evaluator
    arch = load_space("fbnet-c100").sample_many(1, seed=0)[0]
    first = ev.evaluate(arch)
    calls = []
    ev.scorer.score = lambda a: calls.append(a) or {"params": 0.0}
    assert ev.evaluate(arch) is first and calls == []


@pytest.mark.parametrize("argv, message", [
    (["--space", "nope", "--device", "raspi4"], "unknown search space 'nope'"),
    (["--space", "fbnet-c100", "--device", "raspi5"], "raspi5"),
    (["--space", "mobilenet-c10", "--device", "raspi4"], "mobilenet-c10"),
    (["--space", "fbnet-c100", "--device", "raspi4", "--storage", "postgresql://nobody@127.0.0.1:1/none"],
     "cannot open storage"),
    (["--space", "fbnet-c100", "--device", "raspi4", "--objectives", "proxy,speed"], "--objectives"),
])
def test_bad_search_input_is_one_line(tmp_path, capsys, argv, message):
    rc, _, err = run_cli(capsys, "search", *argv, "--trials", "2", "--proxy", "params", "--quiet",
                         *([] if "--storage" in argv else ["--storage", f"journal:///{tmp_path}/x.journal"]))
    assert rc == 2, err
    assert message in err and "Traceback" not in err
    assert err.strip().count("\n") == 0


def test_pareto_unknown_study(tmp_path, capsys):
    cfg = _cfg(tmp_path, trials=2)
    search(cfg)
    rc, _, err = run_cli(capsys, "pareto", "--storage", cfg.storage, "--study", "other", "-o", tmp_path / "o")
    assert rc == 2 and "no study 'other'" in err and "studies: t" in err


def _search_cmd(storage, trials, *extra):
    return [sys.executable, "-m", "nas.cli", "search", "--space", "fbnet-c100", "--device", "raspi4", "--proxy",
            "params", "--data", "noise", "--trials", str(trials), "--storage", storage, "--study", "t", "--quiet", *extra]


def _count(db, state):
    with sqlite3.connect(db) as con:
        return con.execute("select count(*) from trials where state=?", (state,)).fetchone()[0]


def _wait_for(predicate, timeout=120):
    start = time.time()
    while time.time() - start < timeout:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("backend", ["sqlite", "journal"])
def test_sigkill_mid_trial_loses_nothing(tmp_path, backend):
    """A worker killed with SIGKILL leaves a RUNNING trial; the next run detects it as stale and re-runs it."""
    env = {**os.environ, "NAS_HEARTBEAT_GRACE_S": "3"}
    storage = f"sqlite:///{tmp_path}/s.db" if backend == "sqlite" else f"journal:///{tmp_path}/s.journal"

    def running_after_some_complete():
        try:
            ts = _trials(storage)
        except Exception:
            return False
        return sum(t.state == TrialState.COMPLETE for t in ts) >= 3 and any(t.state == TrialState.RUNNING for t in ts)

    killed = []
    for _ in range(5):  # the kill can land between two trials (nothing RUNNING): resume and kill again
        proc = subprocess.Popen(_search_cmd(storage, 400), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        assert _wait_for(running_after_some_complete), proc.communicate(timeout=5)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = [t.number for t in _trials(storage) if t.state == TrialState.RUNNING]
        if killed:
            break
        time.sleep(3.5)
    assert len(killed) == 1
    done_before = sum(t.state == TrialState.COMPLETE for t in _trials(storage))
    time.sleep(3.5)  # let the heartbeat go stale
    target = done_before + 3
    res = subprocess.run(_search_cmd(storage, target), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    trials = _trials(storage)
    states = {t.number: t.state for t in trials}
    assert states[killed[0]] == TrialState.FAIL
    assert not any(s == TrialState.RUNNING for s in states.values())
    # the killed trial's parameters (those sampled before the kill) were re-run as a new, complete trial
    killed_params = next(t.params for t in trials if t.number == killed[0]).items()
    retried = [t for t in trials if t.number > killed[0] and t.state == TrialState.COMPLETE
               and killed_params <= t.params.items()]
    assert retried, "stale trial was not re-run"
    assert sum(s == TrialState.COMPLETE for s in states.values()) >= target


def test_ctrl_c_finishes_cleanly(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    proc = subprocess.Popen(_search_cmd(storage, 500), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert _wait_for(lambda: os.path.exists(f"{tmp_path}/s.db") and _count(f"{tmp_path}/s.db", "COMPLETE") >= 2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert _count(f"{tmp_path}/s.db", "RUNNING") == 0
    assert "next: nas pareto" in out


def test_workers_share_one_study_without_loss_or_duplicates(tmp_path):
    storage = f"journal:///{tmp_path}/w.journal"
    res = subprocess.run(_search_cmd(storage, 40, "--workers", "2"), cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    trials = _trials(storage)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len(trials) >= 40
    assert {t.user_attrs["provenance"]["worker"] for t in trials} == {0, 1}


@pytest.mark.skipif(not os.environ.get("NAS_TEST_POSTGRES_URL"), reason="NAS_TEST_POSTGRES_URL not set (CI starts a server)")
def test_postgres_workers(tmp_path):
    url = os.environ["NAS_TEST_POSTGRES_URL"]
    study = f"pg{os.getpid()}"
    cmd = [a if a != "t" else study for a in _search_cmd(url, 30, "--workers", "3")]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    trials = _trials(url, study)
    assert len({t.number for t in trials}) == len(trials) >= 30
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert {t.user_attrs["provenance"]["worker"] for t in trials} == {0, 1, 2}


@pytest.mark.parametrize("backend", ["sqlite", "journal"])
def test_trial_killed_before_its_first_heartbeat_is_failed_and_retried(tmp_path, monkeypatch, backend):
    """A RUNNING trial with no heartbeat at all (worker killed right after creating it) is stale once its start
    time is older than the grace period; Optuna's own RDB heartbeat never fails such a trial."""
    import optuna

    from nas.search import storage as st

    url = f"sqlite:///{tmp_path}/s.db" if backend == "sqlite" else f"journal:///{tmp_path}/s.journal"
    study = optuna.create_study(storage=st.open_storage(url), study_name="t")
    orphan = study.ask()
    orphan.suggest_int("x", 0, 9)
    assert st.fail_stale_trials(study) == []  # still within the grace period
    monkeypatch.setattr(st, "GRACE_PERIOD_S", -1)
    assert st.fail_stale_trials(study) == [orphan.number]
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.FAIL, TrialState.WAITING]
    assert study.get_trials()[1].system_attrs["fixed_params"] == {"x": orphan.params["x"]}
