"""nas.optuna_compat: each use of Optuna's internals, exercised against the installed Optuna on real studies (SQLite
and journal storages), and the supported version range (the same in pyproject.toml)."""
import json
import tomllib

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from conftest import ROOT
from nas import optuna_compat as compat
from nas.errors import NasError

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(params=["sqlite", "journal"])
def storage(request, tmp_path):
    if request.param == "sqlite":
        return optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/s.db")
    return optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "s.journal")))


def journal(tmp_path):
    return optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "s.journal")))


def test_the_installed_optuna_is_supported_and_pyproject_pins_the_same_range():
    compat.check_version(optuna.__version__)
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert [d for d in deps if d.startswith("optuna")] == [f"optuna{compat.SUPPORTED}"]


@pytest.mark.parametrize("version", ["5.0.0", "5.1.0", "5.9.2.dev0"])
def test_versions_in_the_range_pass(version):
    compat.check_version(version)


@pytest.mark.parametrize("version", ["4.6.0", "4.0.0", "6.0.0", "6.0.0rc1", "6.1", "not-a-version"])
def test_versions_outside_the_range_are_a_clear_error(version):
    with pytest.raises(NasError, match=rf"Optuna {version} is installed; nas works with optuna>=5\.0,<6") as err:
        compat.check_version(version)
    assert err.value.where == "optuna" and "pip install 'optuna>=5.0,<6'" in err.value.fix


def test_trial_study_and_storage_ids(storage):
    study = optuna.create_study(storage=storage, study_name="a")
    other = optuna.create_study(storage=storage, study_name="b")
    other.tell(other.ask(), 0.0)  # the two studies' trial numbers and ids now differ
    trial = study.ask()
    held = compat.storage_of(study)
    assert (compat.rdb_of(held) or held) is storage  # an RDB storage as the study holds it: in Optuna's cache
    assert compat.study_id_of(study) == storage.get_study_id_from_name("a") != compat.study_id_of(other)
    trial_id = compat.trial_id_of(trial)
    assert trial_id == storage.get_trial_id_from_study_id_trial_number(compat.study_id_of(study), trial.number)
    frozen = compat.storage_of(study).get_trial(trial_id)
    assert frozen.number == trial.number == 0 and compat.trial_id_of(frozen) == trial_id


def test_compute_hypervolume_by_hand():
    assert compat.compute_hypervolume(np.array([[1.0, 3.0], [2.0, 1.0]]), np.array([4.0, 4.0])) == pytest.approx(7)
    cube = compat.compute_hypervolume(np.array([[0.0, 0.0, 0.0]]), np.array([1.0, 2.0, 3.0]))
    assert isinstance(cube, float) and cube == pytest.approx(6)


def test_rdb_of_finds_the_rdb_storage_behind_a_study(tmp_path):
    rdb = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/s.db")
    study = optuna.create_study(storage=rdb)
    assert compat.storage_of(study) is not rdb  # Optuna wraps it in its cache
    assert compat.rdb_of(compat.storage_of(study)) is rdb and compat.rdb_of(rdb) is rdb
    assert compat.rdb_of(journal(tmp_path)) is None
    assert compat.rdb_of(optuna.storages.InMemoryStorage()) is None


def test_rdb_heartbeat_ages_are_the_databases_own(tmp_path):
    rdb = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/s.db")
    study, other = optuna.create_study(storage=rdb, study_name="a"), optuna.create_study(storage=rdb, study_name="b")
    beating, silent, done, elsewhere = study.ask(), study.ask(), study.ask(), other.ask()
    for t in (beating, done, elsewhere):
        rdb.record_heartbeat(compat.trial_id_of(t))
    study.tell(done, 1.0)
    ages = compat.rdb_heartbeat_ages(rdb, compat.study_id_of(study))
    assert list(ages) == [compat.trial_id_of(beating)]  # running, with a row, in this study
    assert 0 <= ages[compat.trial_id_of(beating)] < 60
    assert compat.trial_id_of(silent) not in ages


def test_journal_open_trials_skip_the_finished_lead_and_match_optunas_listing(tmp_path):
    storage = journal(tmp_path)
    study = optuna.create_study(storage=storage, study_name="t")
    sid, prefix = compat.study_id_of(study), {}
    study.tell(study.ask(), 1.0)
    a, b = study.ask(), study.ask()
    study.tell(b, 2.0)  # finished behind an open trial: a's place is where the next listing starts
    study.enqueue_trial({"x": 1})
    for states in [(TrialState.RUNNING,), (TrialState.WAITING,), (TrialState.RUNNING, TrialState.WAITING)]:
        ours = compat.journal_open_trials(storage, sid, states, prefix)
        plain = storage.get_all_trials(sid, deepcopy=False, states=states)
        assert [t.number for t in ours] == [t.number for t in plain] and ours
        assert all(x is y for x, y in zip(ours, plain))  # the storage's own objects, not copies
    assert prefix == {sid: 1}
    study.tell(a, 3.0)
    assert [t.number for t in compat.journal_open_trials(storage, sid, (TrialState.WAITING,), prefix)] == [3]
    assert prefix == {sid: 3}
    assert compat.journal_open_trials(storage, sid + 99, (TrialState.WAITING,), prefix) is None  # unknown study


def test_journal_set_trial_params_writes_what_suggest_would(tmp_path):
    storage = journal(tmp_path)
    study = optuna.create_study(storage=storage, study_name="t")
    trial = study.ask()
    dists = {"op": CategoricalDistribution(("conv", "skip")), "k": IntDistribution(1, 7, step=2)}
    compat.journal_set_trial_params(storage, compat.trial_id_of(trial), {"op": ("skip", dists["op"]),
                                                                          "k": (5, dists["k"])})
    for reader in (storage, journal(tmp_path)):  # this process, and a fresh one replaying the file
        t = reader.get_trial(compat.trial_id_of(trial))
        assert t.params == {"op": "skip", "k": 5} and t.distributions == dists


def test_journal_file_append_writes_lines_optuna_reads(tmp_path):
    backend = JournalFileBackend(str(tmp_path / "s.journal"))
    logs = [{"op_code": 0, "worker_id": "w", "n": i} for i in range(3)]
    compat.journal_file_append(backend, (json.dumps(logs[0]) + "\n").encode())
    compat.journal_file_append(backend, "".join(json.dumps(log) + "\n" for log in logs[1:]).encode())
    assert list(JournalFileBackend(str(tmp_path / "s.journal")).read_logs(0)) == logs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.journal"]  # the lock was released
