"""Crash-safe storage: URLs, the trial heartbeat, stale trials failed and retried."""
import pytest
from optuna.trial import TrialState


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
    checker = st.StaleTrials(study)
    assert checker.fail() == []  # first seen: it may still beat
    monkeypatch.setattr(st, "GRACE_PERIOD_S", -1)
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

    from nas.search import storage as st

    from helpers_search import wait_for

    monkeypatch.setattr(st, "HEARTBEAT_INTERVAL_S", 0.05)
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    trial = study.ask()
    flaky = FlakyStorage(study._storage, failures=3)
    with caplog.at_level(logging.WARNING, logger="nas.search.storage"):
        beat = st.TrialHeartbeat(flaky, trial._trial_id)
        assert wait_for(lambda: flaky.beats >= 8, timeout=10), "the heartbeat stopped after a storage error"
        assert beat._thread.is_alive()
        last = study._storage.get_trial(trial._trial_id).system_attrs["heartbeat"]
        assert wait_for(lambda: study._storage.get_trial(trial._trial_id).system_attrs["heartbeat"] > last, 10)
        study.tell(trial, 1.0)  # the trial ends without stop(): its heartbeat ends with it, without a warning
        assert wait_for(lambda: not beat._thread.is_alive(), timeout=10)
    warnings = [r for r in caplog.records if r.name == "nas.search.storage"]
    assert len(warnings) == 1 and "database is locked" in warnings[0].getMessage()
    assert f"trial {trial.number}" in warnings[0].getMessage()


def test_heartbeat_stops_when_stopped(monkeypatch):
    import optuna

    from nas.search import storage as st

    monkeypatch.setattr(st, "HEARTBEAT_INTERVAL_S", 0.05)
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    trial = study.ask()
    beat = st.TrialHeartbeat(study._storage, trial._trial_id)
    first = study._storage.get_trial(trial._trial_id).system_attrs["heartbeat"]
    beat.stop()
    assert not beat._thread.is_alive()
    assert study._storage.get_trial(trial._trial_id).state == optuna.trial.TrialState.RUNNING
    assert study._storage.get_trial(trial._trial_id).system_attrs["heartbeat"] >= first


def test_heartbeat_back_off_never_spaces_beats_beyond_the_interval(monkeypatch):
    from nas.search import storage as st

    monkeypatch.setattr(st, "HEARTBEAT_INTERVAL_S", 2)
    assert [st.retry_delay(k) for k in range(6)] == [2, 0.25, 0.5, 1.0, 2, 2]


def test_stale_trial_retry_is_found_by_its_own_id_when_another_worker_enqueues(monkeypatch):
    """Regression (bug 5): after re-queuing a stale trial the retry count went to the last WAITING trial,
    which is another worker's when it enqueued one in between."""
    import optuna

    from nas.search import storage as st

    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), study_name="t")
    orphan = study.ask()
    orphan.suggest_int("x", 0, 9)
    storage = study._storage
    real_create = storage.create_new_trial

    def create_then_another_worker_enqueues(study_id, template_trial=None):
        trial_id = real_create(study_id, template_trial=template_trial)
        if template_trial is not None and template_trial.state == TrialState.WAITING:
            real_create(study_id, template_trial=optuna.trial.create_trial(
                state=TrialState.WAITING, system_attrs={"fixed_params": {"x": 99}}))
        return trial_id

    monkeypatch.setattr(storage, "create_new_trial", create_then_another_worker_enqueues)
    monkeypatch.setattr(st, "GRACE_PERIOD_S", -1)
    checker = st.StaleTrials(study)
    assert checker.fail() == [] and checker.fail() == [orphan.number]  # watched, then seen standing still
    retry, other = study.get_trials(states=(TrialState.WAITING,))
    assert retry.system_attrs["fixed_params"] == {"x": orphan.params["x"]}
    assert retry.system_attrs["retry_count"] == 1 and retry.user_attrs["retried_from"] == orphan.number
    assert "retry_count" not in other.system_attrs and "retried_from" not in other.user_attrs


@pytest.mark.parametrize("url, package, install", [
    ("mysql://u@127.0.0.1:1/db", "mysqlclient", "pip install mysqlclient"),
    ("mysql+pymysql://u@127.0.0.1:1/db", "PyMySQL", "pip install PyMySQL"),
    ("postgresql+psycopg2://u@127.0.0.1:1/db", "psycopg2", "pip install psycopg2-binary"),
])
def test_missing_driver_names_the_driver_the_url_needs(url, package, install):
    """Regression (bug 9): every missing driver was reported as psycopg's."""
    import importlib.util

    from nas.errors import NasError
    from nas.search.storage import open_storage

    module = {"mysqlclient": "MySQLdb", "PyMySQL": "pymysql", "psycopg2": "psycopg2"}[package]
    if importlib.util.find_spec(module):
        pytest.skip(f"{module} is installed here")
    with pytest.raises(NasError) as err:
        open_storage(url)
    text = str(err.value)
    assert err.value.argument == "storage" and url in text
    assert f"needs the {package} driver" in text and install in text and "psycopg[binary]" not in text


def test_driver_hint_follows_the_urls_dialect_and_driver():
    from nas.search.storage import driver_hint

    assert driver_hint("postgresql://u@h/db") == ("psycopg", "pip install 'psycopg[binary]' (or: pip install -e '.[postgres]')")
    assert driver_hint("postgresql+psycopg://u@h/db")[0] == "psycopg"
    assert driver_hint("mysql+mysqlconnector://u@h/db") == ("mysql-connector-python", "pip install mysql-connector-python")
    assert driver_hint("mysql+mysqldb://u@h/db")[0] == "mysqlclient"


def test_storage_errors_name_the_argument_not_a_flag(tmp_path):
    from nas.errors import NasError
    from nas.search.storage import open_storage

    with pytest.raises(NasError, match="unsupported storage URL") as err:
        open_storage("redis://h/0")
    assert err.value.argument == "storage" and "--" not in str(err.value)
    (tmp_path / "file").write_text("")
    with pytest.raises(NasError, match="cannot create the folder") as err:
        open_storage(f"sqlite:///{tmp_path}/file/sub/s.db")
    assert err.value.argument == "storage" and "--storage" not in str(err.value)


@pytest.mark.parametrize("backend", ["sqlite", "journal"])
def test_trial_index_reads_each_finished_trial_once_and_keeps_open_ones(tmp_path, backend):
    """TrialIndex.refresh: finished trials once each, in number order; running/waiting ones every time until
    they finish; trials created by others (here: after the last refresh) appear at the next one."""
    import optuna

    from nas.search import storage as st

    url = f"sqlite:///{tmp_path}/s.db" if backend == "sqlite" else f"journal:///{tmp_path}/s.journal"
    study = optuna.create_study(storage=st.open_storage(url), study_name="t")
    index = st.TrialIndex(study)
    assert index.refresh() == ([], [])
    study.tell(study.ask(), 1.0)
    running = study.ask()
    study.enqueue_trial({"x": 3})
    finished, unfinished = index.refresh()
    assert [t.number for t in finished] == [0] and [t.number for t in unfinished] == [1, 2]
    assert [t.state for t in unfinished] == [TrialState.RUNNING, TrialState.WAITING]
    study.tell(running, state=TrialState.FAIL)
    study.tell(study.ask(), 2.0)  # takes the waiting trial 2
    study.tell(study.ask(), 3.0)  # a new trial 3
    finished, unfinished = index.refresh()
    assert [(t.number, t.state) for t in finished] == [(1, TrialState.FAIL), (2, TrialState.COMPLETE),
                                                        (3, TrialState.COMPLETE)]
    assert unfinished == [] and index.refresh() == ([], [])


def test_search_loop_does_not_list_the_whole_study_after_each_trial(tmp_path, monkeypatch):
    """What runs after every trial (stale trials, the trial count, the NaN guard, the front sampler) reads the
    study incrementally: study.get_trials, which walks every trial, is called a fixed number of times however
    many trials run."""
    import optuna

    from nas.search.run import search_from_config
    from helpers_search import fast_cfg

    calls = []
    real = optuna.Study.get_trials

    def counting(self, *a, **kw):
        calls.append(1)
        return real(self, *a, **kw)

    monkeypatch.setattr(optuna.Study, "get_trials", counting)
    counts = []
    for n in (6, 12):
        calls.clear()
        search_from_config(fast_cfg(tmp_path, trials=n, study=f"s{n}"))
        counts.append(len(calls))
    assert counts[0] == counts[1]


def test_journal_listing_of_unfinished_trials_matches_optunas(tmp_path):
    """The journal storage's WAITING/RUNNING listings skip leading finished trials and give what Optuna's own
    listing gives, as trials finish out of order and new ones are queued."""
    import optuna

    from nas.search import storage as st

    storage = st.open_storage(f"journal:///{tmp_path}/s.journal")
    study = optuna.create_study(storage=storage, study_name="t")
    plain = optuna.storages.JournalStorage.get_all_trials
    sid = study._study_id
    open_states = [(TrialState.WAITING,), (TrialState.RUNNING,), (TrialState.RUNNING, TrialState.WAITING)]

    def same():
        for states in open_states:
            ours = [t.number for t in storage.get_all_trials(sid, deepcopy=False, states=states)]
            assert ours == [t.number for t in plain(storage, sid, deepcopy=False, states=states)]

    a, b = study.ask(), study.ask()
    study.tell(b, 1.0)  # a later trial finishes first: a is still open behind it
    same()
    study.tell(a, 2.0)
    study.enqueue_trial({"x": 1})
    same()
    c = study.ask()  # the waiting one
    same()
    study.tell(c, state=TrialState.FAIL)
    same()
    assert [t.number for t in storage.get_all_trials(sid, states=(TrialState.COMPLETE,))] == [0, 1]


def test_item6_default_journal_is_in_the_working_folder(tmp_path, monkeypatch):
    """Item 6: the multi-worker default ``journal:///nas-studies.journal`` was /nas-studies.journal, at the
    filesystem root (a PermissionError traceback as non-root; as root every project shared one file). It is in
    the working folder, like the SQLite default; a journal URL naming a file at the root is refused with the
    working-folder spelling."""
    from nas.errors import NasError
    from nas.search import SearchConfig
    from nas.search import storage as st

    monkeypatch.chdir(tmp_path)
    url = SearchConfig(space="fbnet-c100", devices=["raspi4"], workers=2, proxy="params").resolved().storage
    assert url == st.DEFAULT_JOURNAL and st.is_journal(url)
    assert st.journal_path(url).resolve() == tmp_path / "nas-studies.journal"
    st.open_storage(url).create_new_study([], "s")
    assert (tmp_path / "nas-studies.journal").is_file()
    assert st.journal_path(f"journal:///{tmp_path}/a.journal") == tmp_path / "a.journal"  # absolute stays absolute
    with pytest.raises(NasError, match=r"filesystem root.*") as err:
        st.open_storage("journal:///study.journal")
    assert "journal:study.journal" in err.value.fix and err.value.argument == "storage"


def test_item8_public_url_hides_the_password_and_errors_never_show_it(capsys):
    """Item 8: ``postgresql://user:pass@host/db`` was shown whole in every error (and hover, card and printed
    command). Shown or stored, the password is ``***``; in a command to paste it is left out (PGPASSWORD or
    ~/.pgpass supply it)."""
    from conftest import run_cli
    from nas.search.storage import public_url

    url = "postgresql+psycopg://ann:s3cr%40t@db.lan:5432/nas?sslmode=require"
    assert public_url(url) == "postgresql+psycopg://ann:***@db.lan:5432/nas?sslmode=require"
    assert public_url(url, password=None) == "postgresql+psycopg://ann@db.lan:5432/nas?sslmode=require"
    for plain in ("sqlite:///nas-studies.db", "journal:my studies/s.journal", "postgresql://ann@db/nas"):
        assert public_url(plain) == plain == public_url(plain, password=None)
    rc, out, err = run_cli(capsys, "pareto", "--storage", "postgresql://ann:s3cret@127.0.0.1:1/nas", "--study", "s",
                           "-o", "unused")
    assert rc == 2 and "cannot open storage postgresql://ann:***@127.0.0.1:1/nas" in err
    assert "s3cret" not in out + err
    rc, out, err = run_cli(capsys, "pareto", "--storage", "postgresql://ann:s3cret@127.0.0.1:1/nas?x=%", "--study",
                           "s", "-o", "unused")  # a URL sqlalchemy cannot parse: its message quotes the URL
    assert rc == 2 and "s3cret" not in out + err


@pytest.mark.parametrize("backend", ["sqlite", "journal"])
def test_item4_stale_detection_never_compares_two_hosts_clocks(tmp_path, monkeypatch, backend):
    """Item 4: a beat stored the worker's time.time() and the checker compared it with its own clock, so a
    worker whose clock ran an hour behind was failed as stale while alive. A journal trial beats a counter that
    the checker watches on its own monotonic clock; an RDB trial's beat is stamped by the database, whose clock
    alone says how old it is."""
    import time

    import optuna
    import sqlalchemy

    from nas.search import storage as st

    monkeypatch.setenv("NAS_HEARTBEAT_GRACE_S", "1")
    url = f"sqlite:///{tmp_path}/s.db" if backend == "sqlite" else f"journal:{tmp_path}/s.journal"
    study = optuna.create_study(storage=st.open_storage(url), study_name="t")
    live = study.ask()
    storage, checker = study._storage, st.StaleTrials(study)
    skewed = time.time() - 3600  # what a worker whose clock is an hour behind wrote as its beat
    storage.set_trial_system_attr(live._trial_id, "heartbeat", skewed)
    rdb = st.rdb_of(storage)
    if rdb is not None:
        rdb.record_heartbeat(live._trial_id)  # the beat itself: a row stamped by the database
    assert checker.fail() == []
    storage.set_trial_system_attr(live._trial_id, "heartbeat", skewed + 1)  # it beats again (journal)
    if rdb is not None:
        rdb.record_heartbeat(live._trial_id)
    assert checker.fail() == [] and st.StaleTrials(study).fail() == []  # alive, to any checker
    time.sleep(2.2)  # then its beats stop for longer than the grace (SQLite's now() counts whole seconds)
    assert checker.fail() == [live.number]
    if rdb is not None:  # the database's clock says how old a beat is: a fresh checker needs no watching
        dead = study.ask()
        rdb.record_heartbeat(dead._trial_id)
        with rdb.engine.begin() as conn:
            conn.execute(sqlalchemy.text("update trial_heartbeats set heartbeat = datetime(heartbeat, '-1 hour') "
                                         "where trial_id = :t"), {"t": dead._trial_id})
        assert st.StaleTrials(study).fail() == [dead.number]


def test_item4_grace_scales_with_the_trial_time(tmp_path, monkeypatch):
    """Item 4: the grace was a fixed 10 s whatever a trial took; it is NAS_HEARTBEAT_GRACE_S or, if longer,
    twice the study's median trial time (long trials may be paused or starved for longer)."""
    import datetime

    import optuna

    from nas.search import storage as st

    monkeypatch.delenv("NAS_HEARTBEAT_GRACE_S", raising=False)
    study = optuna.create_study(storage=st.open_storage(f"sqlite:///{tmp_path}/s.db"), study_name="t")
    checker = st.StaleTrials(study)
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
    from nas.search import storage as st

    monkeypatch.setenv("NAS_HEARTBEAT_GRACE_S", "2.5")
    assert st.base_grace_s() == 2.5 and st.interval_s() == 0.5
    monkeypatch.setenv("NAS_HEARTBEAT_GRACE_S", value)
    with pytest.raises(NasError, match=r"NAS_HEARTBEAT_GRACE_S must be a number of seconds >= 1"):
        st.base_grace_s()
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
    from nas.search import storage as st

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
                study = study or optuna.load_study(study_name="t", storage=st.open_storage(url))
            except (KeyError, Exception):  # not created yet
                continue
            proc.send_signal(signal.SIGSTOP)  # paused: mid-trial, or between trials (then try again)
            running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            if running and _sqlite_writable(tmp_path / "s.db"):  # a worker paused inside a write holds
                paused = running[0]  # SQLite's lock: nobody could fail its trial (SQLite's nature, not the test's)
            else:
                proc.send_signal(signal.SIGCONT)
        assert paused is not None, "the worker never ran a trial"
        checker, failed = st.StaleTrials(study), []
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


def test_item15_finished_trials_share_one_copy_of_each_distribution(tmp_path):
    """Optuna keeps every trial with its own copy of every parameter's distribution (~40 KB a mobilenet-c10
    trial); a search now leaves one object per distinct (name, distribution) in the trials Optuna holds, with the
    same values as a fresh read. Equal-comparing but different choices ((0, 1) and (False, True)) stay apart."""
    import optuna
    from optuna.distributions import CategoricalDistribution as C

    from nas.search.run import SHARE_EVERY, search_from_config
    from nas.search.storage import SharedDistributions, open_storage

    from helpers_search import fast_cfg

    cfg = fast_cfg(tmp_path, storage=f"sqlite:///{tmp_path}/s.db", trials=SHARE_EVERY + 5)
    run = search_from_config(cfg)
    run.optimize(SHARE_EVERY + 5)
    held = run.study.get_trials(deepcopy=False)[:SHARE_EVERY]  # the objects Optuna keeps (shared at trial 50)
    per_name: dict[str, set] = {}
    for t in held:
        for name, d in t.distributions.items():
            per_name.setdefault(name, set()).add(id(d))
    assert per_name and all(len(ids) == 1 for ids in per_name.values())
    fresh = optuna.load_study(study_name=cfg.study, storage=open_storage(cfg.storage)).get_trials()
    assert [t.distributions for t in held] == [t.distributions for t in fresh[:SHARE_EVERY]]
    assert [repr(t.distributions) for t in held] == [repr(t.distributions) for t in fresh[:SHARE_EVERY]]

    study = optuna.create_study()
    for choices, value in (((0, 1), 0), ((False, True), False), ((0, 1), 1)):
        study.add_trial(optuna.trial.create_trial(params={"a": value}, distributions={"a": C(choices)}, value=1.0))
    assert SharedDistributions(study).share() == 3
    a = [t.distributions["a"] for t in study.get_trials(deepcopy=False)]
    assert a[0] is a[2] and a[1] is not a[0] and a[1].choices == (False, True)
