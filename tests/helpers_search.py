"""What the tests/test_search_* files share (no tests of its own): a cheap search configuration on the shipped
FBNet table, reading a study back, and the `nas search` command line for subprocess tests."""
import sqlite3
import sys
import time

import optuna

from nas.search import SearchConfig

FAST = dict(space="fbnet-c100", devices=["raspi4"], proxy="params", data="noise")


def fast_cfg(tmp_path, **kw) -> SearchConfig:
    opts = {**FAST, "storage": f"journal:///{tmp_path}/s.journal", "study": "t", "trials": 30, **kw}
    return SearchConfig(**opts)


def stored_trials(storage, study="t"):
    from nas.search.storage import open_storage

    return optuna.load_study(study_name=study, storage=open_storage(storage)).get_trials()


def search_cmd(storage, trials, *extra):
    return [sys.executable, "-m", "nas.cli", "search", "--space", "fbnet-c100", "--device", "raspi4", "--proxy",
            "params", "--data", "noise", "--trials", str(trials), "--storage", storage, "--study", "t", "--quiet", *extra]


def count_state(db, state):
    """Trials in ``state``; 0 while the search is still creating the database's tables."""
    with sqlite3.connect(db) as con:
        try:
            return con.execute("select count(*) from trials where state=?", (state,)).fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return 0
            raise


def wait_for(predicate, timeout=120):
    start = time.time()
    while time.time() - start < timeout:
        if predicate():
            return True
        time.sleep(0.2)
    return False
