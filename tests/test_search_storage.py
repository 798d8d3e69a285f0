"""Storage URLs: opening them (drivers, errors that name the argument), the journal's own listings, the default
journal's place, and what is shown of a URL."""
import pytest
from optuna.trial import TrialState


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


def test_journal_listing_of_an_unknown_study_raises_instead_of_hanging(tmp_path):
    """Regression: the journal storage's listing of unfinished trials fell back to Optuna's own listing while it
    held the storage's (non-reentrant) lock, so asking about an unknown study hung the process for ever."""
    import threading

    from nas.search.storage import open_storage

    storage = open_storage(f"journal:///{tmp_path}/s.journal")
    outcome = []

    def listing():
        try:
            storage.get_all_trials(12345, deepcopy=False, states=(TrialState.WAITING,))
        except KeyError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=listing, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "the listing hung"
    assert len(outcome) == 1


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
