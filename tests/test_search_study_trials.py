"""A long study's trials, read and kept cheaply: the incremental TrialIndex and SharedDistributions."""
import pytest
from optuna.trial import TrialState


@pytest.mark.parametrize("backend", ["sqlite", "journal"])
def test_trial_index_reads_each_finished_trial_once_and_keeps_open_ones(tmp_path, backend):
    """TrialIndex.refresh: finished trials once each, in number order; running/waiting ones every time until
    they finish; trials created by others (here: after the last refresh) appear at the next one."""
    import optuna

    from nas.search.storage import open_storage
    from nas.search.study_trials import TrialIndex

    url = f"sqlite:///{tmp_path}/s.db" if backend == "sqlite" else f"journal:///{tmp_path}/s.journal"
    study = optuna.create_study(storage=open_storage(url), study_name="t")
    index = TrialIndex(study)
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


def test_item15_finished_trials_share_one_copy_of_each_distribution(tmp_path):
    """Optuna keeps every trial with its own copy of every parameter's distribution (~40 KB a mobilenet-c10
    trial); a search now leaves one object per distinct (name, distribution) in the trials Optuna holds, with the
    same values as a fresh read. Equal-comparing but different choices ((0, 1) and (False, True)) stay apart."""
    import optuna
    from optuna.distributions import CategoricalDistribution as C

    from nas.search.run import SHARE_EVERY, search_from_config
    from nas.search.storage import open_storage
    from nas.search.study_trials import SharedDistributions

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
