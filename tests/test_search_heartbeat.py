"""Crash safety: the trial heartbeat, stale trials failed and re-queued, the grace period."""
import pytest
from optuna.trial import TrialState

from nas.optuna_compat import storage_of, trial_id_of


@pytest.mark.parametrize("backend", ["sqlite", "journal"])
def test_trial_killed_before_its_first_heartbeat_is_failed_and_retried(tmp_path, monkeypatch, backend):
    """A RUNNING trial with no heartbeat at all (worker killed right after creating it) is stale once its start
    time is older than the grace period; Optuna's own RDB heartbeat never fails such a trial."""
    import optuna

    from nas.search import heartbeat as hb
    from nas.search.storage import open_storage

    url = f"sqlite:///{tmp_path}/s.db" if backend == "sqlite" else f"journal:///{tmp_path}/s.journal"
    study = optuna.create_study(storage=open_storage(url), study_name="t")
    orphan = study.ask()
    orphan.suggest_int("x", 0, 9)
    checker = hb.StaleTrials(study)
    assert checker.fail() == []  # first seen: it may still beat
    monkeypatch.setattr(hb, "GRACE_PERIOD_S", -1)
    assert checker.fail() == [orphan.number]  # seen standing still for the grace
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.FAIL, TrialState.WAITING]
    assert study.get_trials()[1].system_attrs["fixed_params"] == {"x": orphan.params["x"]}


class FlakyStorage:
    """An Optuna storage whose heartbeat writes fail ``failures`` times in a row, after the first beat."""

    def __init__(self, storage, failures: int):
        self.storage, self.failures, self.beats = storage, failures, 0

    def __getattr__(self, name):
        return getattr(self.storage, name)

    def set_trial_system_attr(self, trial_id, key, value):
        if key == "heartbeat":
            self.beats += 1
            if 1 < self.beats <= 1 + self.failures:
                raise RuntimeError("database is locked")  # a transient error (OperationalError in sqlalchemy)
        self.storage.set_trial_system_attr(trial_id, key, value)


def test_heartbeat_survives_transient_storage_errors_and_stops_with_its_trial(monkeypatch, caplog):
    """Regression (bug 4): one failed write ended the heartbeat thread silently, so the live trial went stale
    and was failed and retried by another worker."""
    import logging

    import optuna

    from nas.search import heartbeat as hb

    from helpers_search import wait_for

    monkeypatch.setattr(hb, "HEARTBEAT_INTERVAL_S", 0.05)
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    trial = study.ask()
    flaky = FlakyStorage(storage_of(study), failures=3)
    with caplog.at_level(logging.WARNING, logger="nas.search.heartbeat"):
        beat = hb.TrialHeartbeat(flaky, trial_id_of(trial))
        assert wait_for(lambda: flaky.beats >= 8, timeout=10), "the heartbeat stopped after a storage error"
        assert beat._thread.is_alive()
        last = storage_of(study).get_trial(trial_id_of(trial)).system_attrs["heartbeat"]
        assert wait_for(lambda: storage_of(study).get_trial(trial_id_of(trial)).system_attrs["heartbeat"] > last, 10)
        study.tell(trial, 1.0)  # the trial ends without stop(): its heartbeat ends with it, without a warning
        assert wait_for(lambda: not beat._thread.is_alive(), timeout=10)
    warnings = [r for r in caplog.records if r.name == "nas.search.heartbeat"]
    assert len(warnings) == 1 and "database is locked" in warnings[0].getMessage()
    assert f"trial {trial.number}" in warnings[0].getMessage()


def test_heartbeat_stops_when_stopped(monkeypatch):
    import optuna

    from nas.search import heartbeat as hb

    monkeypatch.setattr(hb, "HEARTBEAT_INTERVAL_S", 0.05)
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    trial = study.ask()
    beat = hb.TrialHeartbeat(storage_of(study), trial_id_of(trial))
    first = storage_of(study).get_trial(trial_id_of(trial)).system_attrs["heartbeat"]
    beat.stop()
    assert not beat._thread.is_alive()
    assert storage_of(study).get_trial(trial_id_of(trial)).state == optuna.trial.TrialState.RUNNING
    assert storage_of(study).get_trial(trial_id_of(trial)).system_attrs["heartbeat"] >= first


def test_heartbeat_back_off_never_spaces_beats_beyond_the_interval(monkeypatch):
    from nas.search import heartbeat as hb

    monkeypatch.setattr(hb, "HEARTBEAT_INTERVAL_S", 2)
    assert [hb.retry_delay(k) for k in range(6)] == [2, 0.25, 0.5, 1.0, 2, 2]


def test_stale_trial_retry_is_found_by_its_own_id_when_another_worker_enqueues(monkeypatch):
    """Regression (bug 5): after re-queuing a stale trial the retry count went to the last WAITING trial,
    which is another worker's when it enqueued one in between."""
    import optuna

    from nas.search import heartbeat as hb

    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), study_name="t")
    orphan = study.ask()
    orphan.suggest_int("x", 0, 9)
    storage = storage_of(study)
    real_create = storage.create_new_trial

    def create_then_another_worker_enqueues(study_id, template_trial=None):
        trial_id = real_create(study_id, template_trial=template_trial)
        if template_trial is not None and template_trial.state == TrialState.WAITING:
            real_create(study_id, template_trial=optuna.trial.create_trial(
                state=TrialState.WAITING, system_attrs={"fixed_params": {"x": 99}}))
        return trial_id

    monkeypatch.setattr(storage, "create_new_trial", create_then_another_worker_enqueues)
    monkeypatch.setattr(hb, "GRACE_PERIOD_S", -1)
    checker = hb.StaleTrials(study)
    assert checker.fail() == [] and checker.fail() == [orphan.number]  # watched, then seen standing still
    retry, other = study.get_trials(states=(TrialState.WAITING,))
    assert retry.system_attrs["fixed_params"] == {"x": orphan.params["x"]}
    assert retry.system_attrs["retry_count"] == 1 and retry.user_attrs["retried_from"] == orphan.number
    assert "retry_count" not in other.system_attrs and "retried_from" not in other.user_attrs


@pytest.mark.parametrize("backend", ["sqlite", "journal"])
def test_item4_stale_detection_never_compares_two_hosts_clocks(tmp_path, monkeypatch, backend):
    """Item 4: a beat stored the worker's time.time() and the checker compared it with its own clock, so a
    worker whose clock ran an hour behind was failed as stale while alive. A journal trial beats a counter that
    the checker watches on its own monotonic clock; an RDB trial's beat is stamped by the database, whose clock
    alone says how old it is."""
    import time

    import optuna
    import sqlalchemy

    from nas.optuna_compat import rdb_of
    from nas.search import heartbeat as hb
    from nas.search.storage import open_storage

    monkeypatch.setenv("NAS_HEARTBEAT_GRACE_S", "1")
    url = f"sqlite:///{tmp_path}/s.db" if backend == "sqlite" else f"journal:{tmp_path}/s.journal"
    study = optuna.create_study(storage=open_storage(url), study_name="t")
    live = study.ask()
    storage, checker = storage_of(study), hb.StaleTrials(study)
    skewed = time.time() - 3600  # what a worker whose clock is an hour behind wrote as its beat
    storage.set_trial_system_attr(trial_id_of(live), "heartbeat", skewed)
    rdb = rdb_of(storage)
    if rdb is not None:
        rdb.record_heartbeat(trial_id_of(live))  # the beat itself: a row stamped by the database
    assert checker.fail() == []
    storage.set_trial_system_attr(trial_id_of(live), "heartbeat", skewed + 1)  # it beats again (journal)
    if rdb is not None:
        rdb.record_heartbeat(trial_id_of(live))
    assert checker.fail() == [] and hb.StaleTrials(study).fail() == []  # alive, to any checker
    time.sleep(2.2)  # then its beats stop for longer than the grace (SQLite's now() counts whole seconds)
    assert checker.fail() == [live.number]
    if rdb is not None:  # the database's clock says how old a beat is: a fresh checker needs no watching
        dead = study.ask()
        rdb.record_heartbeat(trial_id_of(dead))
        with rdb.engine.begin() as conn:
            conn.execute(sqlalchemy.text("update trial_heartbeats set heartbeat = datetime(heartbeat, '-1 hour') "
                                         "where trial_id = :t"), {"t": trial_id_of(dead)})
        assert hb.StaleTrials(study).fail() == [dead.number]


def test_item4_grace_scales_with_the_trial_time(tmp_path, monkeypatch):
    """Item 4: the grace was a fixed 10 s whatever a trial took; it is NAS_HEARTBEAT_GRACE_S or, if longer,
    twice the study's median trial time (long trials may be paused or starved for longer)."""
    import datetime

    import optuna

    from nas.search import heartbeat as hb
    from nas.search.storage import open_storage

    monkeypatch.delenv("NAS_HEARTBEAT_GRACE_S", raising=False)
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path}/s.db"), study_name="t")
    checker = hb.StaleTrials(study)
    assert checker.grace() == 10
    start = datetime.datetime(2026, 1, 1)
    for seconds in (30, 40, 50):  # complete trials, each timed on its own worker's clock
        study.add_trial(optuna.trial.FrozenTrial(
            number=0, trial_id=0, state=optuna.trial.TrialState.COMPLETE, value=1.0, values=None,
            datetime_start=start, datetime_complete=start + datetime.timedelta(seconds=seconds), params={},
            distributions={}, user_attrs={}, system_attrs={}, intermediate_values={}))
    checker.observe(study.get_trials())
    assert checker.grace() == 80
    monkeypatch.setenv("NAS_HEARTBEAT_GRACE_S", "120")
    assert checker.grace() == 120


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf", "0.5"])
def test_item4_heartbeat_grace_setting_is_validated(value, monkeypatch, tmp_path, capsys):
    """Item 4: NAS_HEARTBEAT_GRACE_S was int()-ed at import: '2.5' or a typo was a traceback from any import of
    the search, 0 or a negative value failed every live trial. It is a number of seconds >= 1, else one line."""
    from conftest import run_cli
    from nas.errors import NasError
    from nas.search import heartbeat as hb

    monkeypatch.setenv("NAS_HEARTBEAT_GRACE_S", "2.5")
    assert hb.base_grace_s() == 2.5 and hb.interval_s() == 0.5
    monkeypatch.setenv("NAS_HEARTBEAT_GRACE_S", value)
    with pytest.raises(NasError, match=r"NAS_HEARTBEAT_GRACE_S must be a number of seconds >= 1"):
        hb.base_grace_s()
    rc, _, err = run_cli(capsys, "search", "--space", "fbnet-c100", "--device", "raspi4", "--proxy", "params",
                         "--data", "noise", "--trials", 2, "--storage", f"sqlite:///{tmp_path}/s.db", "--quiet")
    assert rc == 2 and err.count("\n") == 1 and "$NAS_HEARTBEAT_GRACE_S" in err


def _sqlite_writable(path) -> bool:
    """Whether another connection can take SQLite's write lock now (no paused writer holds it)."""
    import sqlite3

    con = sqlite3.connect(path, timeout=0.5)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.rollback()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        con.close()


@pytest.mark.slow
def test_item4_a_paused_worker_whose_trial_was_taken_over_stops_with_one_line(tmp_path):
    """Item 4: a worker paused past the grace had its trial failed and re-queued by another; when it woke it
    died with `ValueError: Cannot tell a FAIL trial` (a traceback). It stops cleanly with one line; the
    trial's parameters wait in the queue."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import optuna

    from conftest import ROOT
    from nas.search import heartbeat as hb
    from nas.search.storage import open_storage

    url = f"sqlite:///{tmp_path}/s.db"
    cmd = [sys.executable, "-m", "nas.cli", "search", "--space", "mobilenet-c10", "--device", "x86-2vcpu", "--data",
           "noise", "--trials", 60, "--storage", url, "--study", "t", "--sampler", "random", "--quiet"]
    proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env={**os.environ, "NAS_HEARTBEAT_GRACE_S": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        study, paused, deadline = None, None, time.monotonic() + 120
        while paused is None and time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                study = study or optuna.load_study(study_name="t", storage=open_storage(url))
            except (KeyError, Exception):  # not created yet
                continue
            proc.send_signal(signal.SIGSTOP)  # paused: mid-trial, or between trials (then try again)
            running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            if running and _sqlite_writable(tmp_path / "s.db"):  # a worker paused inside a write holds
                paused = running[0]  # SQLite's lock: nobody could fail its trial (SQLite's nature, not the test's)
            else:
                proc.send_signal(signal.SIGCONT)
        assert paused is not None, "the worker never ran a trial"
        checker, failed = hb.StaleTrials(study), []
        deadline = time.monotonic() + 120  # the grace scales with the trial time, which is long on a loaded machine
        while not failed and time.monotonic() < deadline:  # another worker takes the paused one's trial
            checker.observe(study.get_trials(deepcopy=False))
            failed = checker.fail()
            time.sleep(0.2)
        assert failed == [paused.number]
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Cannot tell" not in err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("nas: warning:")]
    assert len(lines) == 1 and lines[0].startswith(f"nas: note: trial {paused.number} was taken over"), err
    retry = [t for t in study.get_trials() if t.user_attrs.get("retried_from") == paused.number]
    assert len(retry) == 1
