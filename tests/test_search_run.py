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

from conftest import ROOT, run_cli
from helpers_search import count_state, fast_cfg, search_cmd, stored_trials, wait_for


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
    import optuna

    from nas.search.storage import open_storage

    study = optuna.load_study(study_name="t", storage=open_storage(cfg.storage))
    assert study.metric_names == ["proxy.params", "latency_ms.raspi4", "latency_ms.pixel3"]  # Optuna's plots label them
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


# --------------------------------------------------------------------------------------------------------
# the Python object API: Optuna's own samplers and storages, no side effects on the caller's process
# --------------------------------------------------------------------------------------------------------
def _api_search(storage, sampler, **kw):
    import nas
    from nas.search import Budgets, create_search

    space = nas.load_space("fbnet-c100")
    return create_search(space, latency=[nas.latency.load("raspi4")],
                         scorer=nas.proxies.Scorer(space, ["params"], data="noise"), constraints=Budgets(latency_ms=30.0),
                         sampler=sampler, storage=storage, study="api", **kw)


@pytest.mark.parametrize("backend", ["memory", "journal"])
def test_create_search_with_optuna_sampler_and_storage_objects(tmp_path, backend):
    import optuna
    from optuna.storages.journal import JournalFileBackend

    from nas.search.front import pareto_mask, trials_frame

    storage = optuna.storages.InMemoryStorage() if backend == "memory" else \
        optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "api.journal")))
    sampler = optuna.samplers.RandomSampler(seed=0)
    run = _api_search(storage, sampler)
    run.optimize(10)
    assert isinstance(run.study, optuna.Study) and run.study.sampler is sampler
    assert len(optuna.load_study(study_name="api", storage=storage).get_trials(states=(TrialState.COMPLETE,))) == 10
    front = run.front()
    assert isinstance(front, pd.DataFrame) and len(front) >= 1 and front["feasible"].all()
    assert (front["latency_ms.raspi4"] <= 30.0).all()
    cols, dirs = run.objectives.columns, run.objectives.directions
    pool = trials_frame(run.study)
    pool = pool[pool["feasible"] & ~pool["duplicate"]]
    assert set(front["trial"]) == set(pool["trial"][pareto_mask(pool[cols].to_numpy(), dirs)])
    assert run.status()["complete"] == 10 and run.status()["front"] == len(front)
    run.optimize(12)  # resumes: the study holds 12 finished trials, not 22
    assert run.status()["complete"] == 12


def test_constraints_as_a_mapping_and_bad_constraints():
    import optuna

    run = _api_search(optuna.storages.InMemoryStorage(), optuna.samplers.RandomSampler(seed=1))
    assert run.budgets.latency_ms == 30.0 and run.budgets.size_mb is None
    import nas
    from nas.search import create_search

    space = nas.load_space("fbnet-c100")
    scorer = nas.proxies.Scorer(space, ["params"], data="noise")
    run = create_search(space, latency=[nas.latency.load("raspi4")], scorer=scorer, study="m",
                        constraints={"latency_ms": 25, "size_mb": 4.0}, sampler="random")
    assert (run.budgets.latency_ms, run.budgets.size_mb) == (25, 4.0)
    assert run.study.user_attrs["config"]["size_budget_mb"] == 4.0
    with pytest.raises(NasError, match=r"argument 'constraints': constraints must be a Budgets or a mapping"):
        create_search(space, latency=[nas.latency.load("raspi4")], scorer=scorer, constraints={"latency": 3})


def test_optimize_stops_when_its_event_is_set():
    import threading

    import optuna

    stop = threading.Event()
    run = _api_search(optuna.storages.InMemoryStorage(), optuna.samplers.RandomSampler(seed=0))
    run.optimize(50, stop=stop, callback=lambda frozen: frozen.number >= 2 and stop.set())
    assert run.status()["complete"] == 3


def test_search_installs_no_signal_handler_and_leaves_torch_threads(tmp_path, monkeypatch):
    """The library runs off the main thread and inside a user's program without side effects: no SIGINT
    handler (signal.signal would even fail off the main thread), no global torch threads."""
    import signal
    import threading

    import optuna
    import torch

    torch.set_num_threads(2)  # not the configured 1 thread (the autouse fixture restores it afterwards)
    handler = signal.getsignal(signal.SIGINT)
    calls = []
    monkeypatch.setattr(signal, "signal", lambda *a: calls.append(a))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(("set_num_threads", n)))
    search(fast_cfg(tmp_path, trials=3))
    _api_search(optuna.storages.InMemoryStorage(), None).optimize(3)
    errors = []
    worker = threading.Thread(target=lambda: _safely(errors, lambda: search(fast_cfg(tmp_path, study="thread", trials=3))))
    worker.start()
    worker.join(120)
    assert errors == [] and calls == []
    assert signal.getsignal(signal.SIGINT) is handler and torch.get_num_threads() == 2


def _safely(errors, fn):
    try:
        fn()
    except Exception as exc:  # reported to the test's thread
        errors.append(exc)


# --------------------------------------------------------------------------------------------------------
# a proxy that fails: an error naming it, never a "working" search on NaN scores
# --------------------------------------------------------------------------------------------------------
@pytest.fixture
def nan_proxy():
    """Registers '_test_nan': NaN for the architectures whose canonical text hashes into the first ``share``
    of 100 buckets (set ``nan_proxy.share`` to 0..100)."""
    import math
    import zlib

    from nas.proxies import PROXIES, register_proxy

    class Share:
        share = 75

    @register_proxy("_test_nan", input="none")
    def nan_for_some(probe):
        """Test proxy: NaN for a share of the architectures."""
        return math.nan if zlib.crc32(probe.space.format(probe.arch).encode()) % 100 < Share.share else 1.0

    yield Share
    del PROXIES["_test_nan"]


def test_search_stops_when_the_proxy_scores_nan_too_often(tmp_path, nan_proxy):
    nan_proxy.share = 50  # half: the first ten are not all NaN (0.1 %), more than 20 % of 20 are (99 %)
    with pytest.raises(NasError, match=r"proxy '_test_nan' scored NaN on \d+ of 20 trials") as err:
        search(fast_cfg(tmp_path, proxy="_test_nan", trials=60))
    assert err.value.argument == "proxy"
    assert len([t for t in stored_trials(fast_cfg(tmp_path).storage) if t.state == TrialState.COMPLETE]) == 20


def test_search_stops_when_its_first_ten_trials_are_all_nan(tmp_path, nan_proxy, capsys):
    nan_proxy.share = 100
    with pytest.raises(NasError, match=r"proxy '_test_nan' scored NaN on 10 of 10 trials"):
        search(fast_cfg(tmp_path, proxy="_test_nan", trials=60))
    rc, _, err = run_cli(capsys, "search", "--space", "fbnet-c100", "--device", "raspi4", "--proxy", "_test_nan",
                         "--trials", "60", "--storage", f"journal:///{tmp_path}/cli.journal", "--quiet")
    assert rc == 2 and err.startswith("nas: error: --proxy: proxy '_test_nan' scored NaN on 10 of 10 trials")


def test_search_with_a_few_degenerate_architectures_runs_on(tmp_path, nan_proxy):
    nan_proxy.share = 5
    summary = search(fast_cfg(tmp_path, proxy="_test_nan", trials=30))
    assert summary.trials == 30


def test_search_with_a_raising_proxy_fails_naming_it(tmp_path):
    from nas.proxies import PROXIES, register_proxy

    @register_proxy("_test_raises", input="none")
    def raises(probe):
        """Test proxy: a bug."""
        raise ValueError("bug in the proxy")

    try:
        with pytest.raises(NasError, match=r"proxy '_test_raises' failed on architecture \S+ \(ValueError: bug"):
            search(fast_cfg(tmp_path, proxy="_test_raises", trials=5))
    finally:
        del PROXIES["_test_raises"]


def test_worker_hands_its_error_to_the_parent_as_one_line(tmp_path, nan_proxy):
    """A worker process reports a NasError through the queue (the parent raises it: one line, no child
    traceback). Run in-process here: spawned children cannot see a proxy registered by a test."""
    import multiprocessing
    from dataclasses import asdict

    from nas.cli.search import worker_main

    nan_proxy.share = 100
    errors = multiprocessing.get_context("spawn").SimpleQueue()
    with pytest.raises(SystemExit) as exit_:
        worker_main(asdict(fast_cfg(tmp_path, proxy="_test_nan", trials=20).resolved()), 0, errors)
    problem, where, fix, argument = errors.get()
    assert exit_.value.code == 2 and "scored NaN on 10 of 10 trials" in problem and argument == "proxy"


def test_create_search_checks_its_objectives():
    import optuna

    with pytest.raises(NasError, match="bad objectives proxy,speed") as err:
        _api_search(optuna.storages.InMemoryStorage(), None, objectives=("proxy", "speed"))
    assert err.value.argument == "objectives"


def test_item7_device_given_as_a_path_is_keyed_by_its_table_name(tmp_path, capsys, monkeypatch):
    """Item 7: with ``--device PATH.csv`` metrics were keyed by the path and objectives by the table's device name
    (KeyError 'latency_ms.raspi4' with a budget); two tables of one device name collapsed into one objective.
    Everything is keyed by the table's device name, and two tables with one name are refused."""
    import shutil

    import nas
    from nas.paths import SHIPPED_TABLES_DIR

    monkeypatch.chdir(tmp_path)
    for suffix in (".csv", ".meta.yaml"):
        shutil.copy(SHIPPED_TABLES_DIR / f"raspi4{suffix}", tmp_path / f"copy{suffix}")
    base = ["search", "--space", "fbnet-c100", "--proxy", "params", "--data", "noise", "--trials", 4, "--quiet"]
    rc, out, err = run_cli(capsys, *base, "--device", tmp_path / "copy.csv", "--latency-budget", 30)
    assert rc == 0, err
    assert "study 'fbnet-c100-raspi4'" in out  # the default study name uses the table's name, not its path
    trials = stored_trials("sqlite:///nas-studies.db", "fbnet-c100-raspi4")
    assert {"latency_ms.raspi4", "proxy.params"} <= set(trials[0].user_attrs["metrics"])
    rc, out, err = run_cli(capsys, *base, "--device", "raspi4", "--device", tmp_path / "copy.csv", "--study", "two")
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith(f"nas: error: --device: 'raspi4' and '{tmp_path / 'copy.csv'}' are both tables of device "
                          "'raspi4'")
    space = nas.load_space("fbnet-c100")
    with pytest.raises(NasError, match="both tables of device 'raspi4'") as e:
        nas.search.create_search(space, latency=[nas.latency.load("raspi4"), nas.latency.load(str(tmp_path / "copy.csv"))],
                                 scorer=nas.proxies.Scorer(space, ["params"], data="noise"))
    assert e.value.argument == "latency"


def _double_latencies(csv) -> None:
    df = pd.read_csv(csv, keep_default_na=False, dtype=str)
    df["latency_ms"] = [str(float(v) * 2) for v in df["latency_ms"]]
    df.to_csv(csv, index=False)


def test_item1_resume_refuses_what_changed_a_stored_score(tmp_path, capsys, monkeypatch):
    """Item 1: a resumed study compared option names only: a table whose content changed, an edited space file,
    another proxy seed or allow_estimate all resumed, and the seed cache mixed the old scores into one front. The
    study records what produced its scores; a mismatch is refused in one line naming it; an option left out is
    the study's; a different sampler seed (--seed, e.g. per worker) is allowed."""
    import shutil

    from nas.paths import SHIPPED_SPACES_DIR, SHIPPED_TABLES_DIR

    monkeypatch.chdir(tmp_path)
    for suffix in (".csv", ".meta.yaml"):
        shutil.copy(SHIPPED_TABLES_DIR / f"raspi4{suffix}", tmp_path / f"raspi4{suffix}")
    shutil.copy(SHIPPED_SPACES_DIR / "fbnet-c100.yaml", tmp_path / "space.yaml")
    base = ["search", "--space", "space.yaml", "--device", "raspi4.csv", "--proxy", "params", "--data", "noise",
            "--storage", "sqlite:///s.db", "--quiet"]
    rc, out, err = run_cli(capsys, *base, "--trials", 3, "--latency-budget", 30, "--proxy-seed", 4)
    assert rc == 0, err
    # left out: budget, proxy seed (the study's); another sampler seed: allowed
    rc, out, err = run_cli(capsys, *base, "--trials", 5, "--seed", 7)
    assert rc == 0 and "5 trials" in out, err
    for extra, changed in ((["--proxy-seed", 5], "proxy_seed=4"), (["--allow-estimate"], "allow_estimate=False"),
                           (["--latency-budget", 20], "latency_budget_ms=30")):
        rc, out, err = run_cli(capsys, *base, "--trials", 6, *extra)
        assert rc == 2 and err.count("\n") == 1 and changed in err, (extra, err)
    _double_latencies(tmp_path / "raspi4.csv")
    rc, out, err = run_cli(capsys, *base, "--trials", 6)
    assert rc == 2 and err.count("\n") == 1 and "table 'raspi4'" in err and "content" in err, err
    shutil.copy(SHIPPED_TABLES_DIR / "raspi4.csv", tmp_path / "raspi4.csv")  # the same content again: resumes
    rc, out, err = run_cli(capsys, *base, "--trials", 6)
    assert rc == 0, err
    text = (tmp_path / "space.yaml").read_text()
    (tmp_path / "space.yaml").write_text(text.replace("FBNet space", "The FBNet space"))  # not what scores use
    rc, out, err = run_cli(capsys, *base, "--trials", 7)
    assert rc == 0, err
    assert "k5_e6, skip]" in text
    (tmp_path / "space.yaml").write_text(text.replace("k5_e6, skip]", "skip]", 1))  # one op fewer per block
    rc, out, err = run_cli(capsys, *base, "--trials", 8)
    assert rc == 2 and err.count("\n") == 1 and "space" in err and "changed" in err, err


def test_item1_a_study_made_before_the_record_resumes_with_a_note(tmp_path, capsys):
    """Item 1: a study created before its scores' sources were recorded cannot be checked: it resumes, with one
    line saying so (Search.notes and a warning from the library; printed once by the CLI)."""
    import warnings

    import optuna

    from nas.search.record import UncheckedResumeWarning
    from nas.search.run import search_from_config
    from nas.search.storage import open_storage

    cfg = fast_cfg(tmp_path, trials=3)
    search(cfg)
    study = optuna.load_study(study_name="t", storage=open_storage(cfg.storage))
    old = {k: v for k, v in study.user_attrs["config"].items() if k not in ("record", "proxy_seed", "allow_estimate")}
    study.set_user_attr("config", old)  # as a study of the previous version stored it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = search_from_config(fast_cfg(tmp_path, trials=4))
    assert len(run.notes) == 1 and "before" in run.notes[0] and "not checked" in run.notes[0]
    assert [str(w.message) for w in caught if w.category is UncheckedResumeWarning] == run.notes
    rc, out, err = run_cli(capsys, "search", "--space", "fbnet-c100", "--device", "raspi4", "--proxy", "params",
                           "--data", "noise", "--trials", 5, "--storage", cfg.storage, "--study", "t", "--quiet")
    assert rc == 0, err
    assert [line for line in err.splitlines() if "not checked" in line] == [f"nas: note: {run.notes[0]}"]


@pytest.mark.parametrize("proxy, refused", [("qnaswot", True), ("naswot", False)])
def test_a_study_scored_by_an_older_proxy_definition_is_not_resumed(tmp_path, capsys, proxy, refused):
    """qnaswot's penalty changed from the sum to the mean of its noise ratios: a study scored before kept the name
    `qnaswot` in its config and resumed, so its front compared the two definitions' scores. The record now holds
    each proxy's definition version; one made before versions (all at 1) resumes only for unchanged proxies."""
    import optuna

    from nas.search.storage import open_storage

    cmd = ["search", "--space", "fbnet-c100", "--device", "raspi4", "--proxy", proxy, "--data", "digits",
           "--storage", f"sqlite:///{tmp_path}/s.db", "--study", "t", "--quiet"]
    rc, out, err = run_cli(capsys, *cmd, "--trials", 2)
    assert rc == 0, err
    study = optuna.load_study(study_name="t", storage=open_storage(f"sqlite:///{tmp_path}/s.db"))
    config = study.user_attrs["config"]
    assert config["record"]["proxy_versions"] == {proxy: 2 if proxy == "qnaswot" else 1}
    del config["record"]["proxy_versions"]  # as a study made before proxies were versioned stored it
    study.set_user_attr("config", config)
    rc, out, err = run_cli(capsys, *cmd, "--trials", 3)
    if refused:
        assert rc == 2 and err.count("\n") == 1, err
        assert "proxy qnaswot version 1" in err and "version 2" in err and "mean" in err and "new --study" in err, err
    else:
        assert rc == 0 and "3 trials" in out, err


def test_item15_status_reads_only_new_trials_and_matches_a_full_read(tmp_path):
    """The multi-worker parent asks for the status every second; it re-read the whole study each time (a full
    trial listing a second). Now one listing at the first call, then only the trials finished since."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    from nas.search.run import study_status

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "s.journal")))
    run = _api_search(storage, optuna.samplers.RandomSampler(seed=0))
    run.optimize(8)
    listings = []
    real = storage.get_all_trials
    storage.get_all_trials = lambda *a, **k: listings.append(1) or real(*a, **k)
    first = run.status()
    for _ in range(5):
        assert run.status() == first
    assert len(listings) == 1  # the first status only
    run.optimize(20)
    listings.clear()
    later = run.status()
    assert listings == []  # the 12 new trials, read one by one
    assert later == study_status(run.study, run.objectives) and later["complete"] == 20
    assert later["front"] >= 1 and later["feasible"] <= 20 and set(later["smallest_latency_ms"]) == {"raspi4"}


def test_item15_a_search_returns_freed_memory_to_the_system_as_it_goes(tmp_path, monkeypatch):
    """Item 15: glibc kept each trial's freed network memory (+67 MB over 1,500 trials, malloc in use +12.5 MB);
    the search hands it back at most once per RELEASE_EVERY_S."""
    from nas.search import run as run_module
    from nas.search.run import search_from_config

    from helpers_search import fast_cfg

    calls = []
    monkeypatch.setattr(run_module, "release_free_memory", lambda: calls.append(1) or True)
    monkeypatch.setattr(run_module, "RELEASE_EVERY_S", 0.0)
    search_from_config(fast_cfg(tmp_path, trials=4)).optimize(4)
    assert len(calls) == 4
    calls.clear()
    monkeypatch.setattr(run_module, "RELEASE_EVERY_S", 3600.0)
    search_from_config(fast_cfg(tmp_path, trials=6)).optimize(6)
    assert calls == []
