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
    assert st.fail_stale_trials(study) == []  # still within the grace period
    monkeypatch.setattr(st, "GRACE_PERIOD_S", -1)
    assert st.fail_stale_trials(study) == [orphan.number]
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
    assert st.fail_stale_trials(study) == [orphan.number]
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
