"""`nas search`: real studies on the shipped FBNet tables with a cheap proxy (study, resume, budgets, workers,
Ctrl-C, SIGKILL)."""
import os
import signal
import subprocess
import time

import pandas as pd
import pytest
from optuna.trial import TrialState

from nas import NasError
from nas.search.report import write_report
from nas.search.run import search

from conftest import ROOT
from test_search_common import count_state, fast_cfg, search_cmd, stored_trials, wait_for


@pytest.mark.slow
def test_search_stores_everything_and_respects_budget(tmp_path):
    cfg = fast_cfg(tmp_path, latency_budget_ms=30.0, devices=["raspi4", "pixel3"])
    summary = search(cfg)
    assert summary.trials >= 30 and summary.feasible > 0
    trials = [t for t in stored_trials(cfg.storage) if t.state == TrialState.COMPLETE]
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
    cfg = fast_cfg(tmp_path, trials=12)
    search(cfg)
    first = {t.number: t.user_attrs["arch"] for t in stored_trials(cfg.storage)}
    cfg.trials = 20
    search(cfg)
    after = {t.number: t.user_attrs.get("arch") for t in stored_trials(cfg.storage)}
    assert len([1 for t in stored_trials(cfg.storage) if t.state == TrialState.COMPLETE]) >= 20
    assert all(after[n] == a for n, a in first.items())  # earlier trials kept as they were


def test_changed_options_refuse_to_mix_into_a_study(tmp_path):
    cfg = fast_cfg(tmp_path, trials=3)
    search(cfg)
    with pytest.raises(NasError, match="created with latency_budget_ms=None"):
        search(fast_cfg(tmp_path, trials=3, latency_budget_ms=10.0))


def test_impossible_budget_reports_smallest_latency(tmp_path):
    with pytest.raises(NasError, match=r"no architecture met the budget in \d+ trials \(smallest latency seen: raspi4 \d+\.\d+ ms"):
        search(fast_cfg(tmp_path, trials=25, latency_budget_ms=0.5))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "journal"])
def test_sigkill_mid_trial_loses_nothing(tmp_path, backend):
    """A worker killed with SIGKILL leaves a RUNNING trial; the next run detects it as stale and re-runs it."""
    env = {**os.environ, "NAS_HEARTBEAT_GRACE_S": "3"}
    storage = f"sqlite:///{tmp_path}/s.db" if backend == "sqlite" else f"journal:///{tmp_path}/s.journal"

    def running_after_some_complete():
        try:
            ts = stored_trials(storage)
        except Exception:
            return False
        return sum(t.state == TrialState.COMPLETE for t in ts) >= 3 and any(t.state == TrialState.RUNNING for t in ts)

    killed = []
    for _ in range(5):  # the kill can land between two trials (nothing RUNNING): resume and kill again
        proc = subprocess.Popen(search_cmd(storage, 400), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        assert wait_for(running_after_some_complete), proc.communicate(timeout=5)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = [t.number for t in stored_trials(storage) if t.state == TrialState.RUNNING]
        if killed:
            break
        time.sleep(3.5)
    assert len(killed) == 1
    done_before = sum(t.state == TrialState.COMPLETE for t in stored_trials(storage))
    time.sleep(3.5)  # let the heartbeat go stale
    target = done_before + 3
    res = subprocess.run(search_cmd(storage, target), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    trials = stored_trials(storage)
    states = {t.number: t.state for t in trials}
    assert states[killed[0]] == TrialState.FAIL
    assert not any(s == TrialState.RUNNING for s in states.values())
    # the killed trial's parameters (those sampled before the kill) were re-run as a new, complete trial
    killed_params = next(t.params for t in trials if t.number == killed[0]).items()
    retried = [t for t in trials if t.number > killed[0] and t.state == TrialState.COMPLETE
               and killed_params <= t.params.items()]
    assert retried, "stale trial was not re-run"
    assert sum(s == TrialState.COMPLETE for s in states.values()) >= target


@pytest.mark.slow
def test_ctrl_c_finishes_cleanly(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    proc = subprocess.Popen(search_cmd(storage, 500), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: os.path.exists(f"{tmp_path}/s.db") and count_state(f"{tmp_path}/s.db", "COMPLETE") >= 2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert count_state(f"{tmp_path}/s.db", "RUNNING") == 0
    assert "next: nas pareto" in out


@pytest.mark.slow
def test_workers_share_one_study_without_loss_or_duplicates(tmp_path):
    storage = f"journal:///{tmp_path}/w.journal"
    res = subprocess.run(search_cmd(storage, 40, "--workers", "2"), cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr
    trials = stored_trials(storage)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len(trials) >= 40
    assert {t.user_attrs["provenance"]["worker"] for t in trials} == {0, 1}


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("NAS_TEST_POSTGRES_URL"), reason="NAS_TEST_POSTGRES_URL not set (CI starts a server)")
def test_postgres_workers(tmp_path):
    url = os.environ["NAS_TEST_POSTGRES_URL"]
    study = f"pg{os.getpid()}"
    cmd = [a if a != "t" else study for a in search_cmd(url, 30, "--workers", "3")]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    trials = stored_trials(url, study)
    assert len({t.number for t in trials}) == len(trials) >= 30
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert {t.user_attrs["provenance"]["worker"] for t in trials} == {0, 1, 2}
