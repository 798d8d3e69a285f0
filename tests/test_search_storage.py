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
