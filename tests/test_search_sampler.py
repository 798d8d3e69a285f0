"""nas.search.sampler: the default FrontSampler screens candidates on the tables and a surrogate of the proxy; it
never spends a trial on a network already scored or on a candidate that breaks a budget, is deterministic
under its seed, finds a better front than random at an equal small budget, and a resumed study keeps the sampler
it was created with."""
import numpy as np
import optuna
import pytest

from nas import NasError
from nas.latency import load
from nas.proxies import Scorer
from nas.search import create_search
from nas.search.front import pareto_mask
from nas.search.hypervolume import hypervolume
from nas.search.run import search
from nas.search.sampler import FrontSampler, FrontSettings
from nas.space import load_space

from helpers_search import fast_cfg, stored_trials

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def macro():
    return load_space("nas-bench-macro"), load("x86-2vcpu", dtype="fp32")


def macro_search(macro, sampler, **kw):
    space, table = macro
    return create_search(space, latency=[table], scorer=Scorer(space, ["params"], data="noise"), sampler=sampler, **kw)


def networks(run):
    return [run.evaluator.network(run.space.parse(t.user_attrs["arch"])) for t in run.study.trials]


def test_never_scores_a_network_twice_and_is_deterministic(macro):
    runs = [macro_search(macro, FrontSampler(seed=3, trials=60)) for _ in range(2)]
    for run in runs:
        run.optimize(60)
    nets = networks(runs[0])
    assert len(nets) == 60 and len(set(nets)) == 60  # NAS-Bench-Macro: 6,561 encodings build 3,969 networks
    assert [t.user_attrs["arch"] for t in runs[0].study.trials] == [t.user_attrs["arch"] for t in runs[1].study.trials]
    assert not any(t.user_attrs["metrics"]["duplicate"] for t in runs[0].study.trials)


def test_never_proposes_a_candidate_that_breaks_a_budget(macro):
    space, table = macro
    lats = sorted(table.predict(a, space).latency_ms for a in space.sample_many(200, seed=0))
    budget = lats[len(lats) // 3]  # a third of the space meets it
    run = macro_search(macro, FrontSampler(seed=0, trials=40), constraints={"latency_ms": budget})
    run.optimize(40)
    assert all(t.user_attrs["metrics"]["feasible"] for t in run.study.trials)


def test_beats_random_at_an_equal_small_budget(macro):
    def hv_of(run, ref):
        v = np.array([t.values for t in run.study.trials])
        return hypervolume(v[pareto_mask(v, ["maximize", "minimize"])], ["maximize", "minimize"], ref)

    front, rand = [], []
    for seed in range(3):
        front.append(macro_search(macro, FrontSampler(seed=seed, trials=40)))
        rand.append(macro_search(macro, optuna.samplers.RandomSampler(seed=seed)))
    for run in front + rand:
        run.optimize(40)
    allv = np.array([t.values for run in front + rand for t in run.study.trials])
    ref = np.array([allv[:, 0].min(), allv[:, 1].max()])
    assert np.median([hv_of(r, ref) for r in front]) > np.median([hv_of(r, ref) for r in rand])


def test_two_searches_on_one_study_share_the_networks_they_took(macro, tmp_path):
    storage = f"journal:///{tmp_path}/s.journal"
    a = macro_search(macro, FrontSampler(seed=0, trials=40), storage=storage, study="w")
    b = macro_search(macro, FrontSampler(seed=1, trials=40), storage=storage, study="w", worker=1)
    a.optimize(15)
    b.optimize(30)
    a.optimize(40)
    nets = networks(a)
    assert len(nets) == 40 and len(set(nets)) == 40


def test_on_a_journal_the_proposal_is_written_in_one_append_and_the_trials_are_unchanged(macro, tmp_path,
                                                                                          monkeypatch):
    """The journal storage takes a proposal's choices in one append (not one per suggest); the study's trials,
    their parameters and distributions are those of the same search in memory."""
    from nas.search.storage import _journal_storage_class

    cls, calls = _journal_storage_class(), {"one": 0, "many": []}
    one, many = cls.set_trial_param, cls.set_trial_params
    monkeypatch.setattr(cls, "set_trial_param", lambda self, *a: (calls.__setitem__("one", calls["one"] + 1),
                                                                   one(self, *a))[1])
    monkeypatch.setattr(cls, "set_trial_params", lambda self, tid, p: (calls["many"].append(len(p)),
                                                                        many(self, tid, p))[1])
    journal = macro_search(macro, FrontSampler(seed=0, trials=20), storage=f"journal:///{tmp_path}/s.journal")
    memory = macro_search(macro, FrontSampler(seed=0, trials=20))
    journal.optimize(20)
    memory.optimize(20)
    assert [(t.params, t.distributions, t.values) for t in journal.study.trials] == \
           [(t.params, t.distributions, t.values) for t in memory.study.trials]
    assert calls["many"] == [len(t.params) for t in journal.study.trials] and len(calls["many"]) == 20
    assert calls["one"] == 0 and min(calls["many"]) > 5  # no choice was written on its own


def test_a_resumed_study_keeps_its_sampler_and_refuses_another(tmp_path):
    cfg = fast_cfg(tmp_path, trials=12, sampler="random")
    search(cfg)
    resumed = fast_cfg(tmp_path, trials=15)  # no sampler named: the study's own
    search(resumed)
    study = stored_trials(cfg.storage)
    assert len(study) == 15
    with pytest.raises(NasError, match=r"created with sampler='random'.*'tpe'") as err:
        search(fast_cfg(tmp_path, trials=20, sampler="tpe"))
    assert err.value.argument == "sampler"
    new = fast_cfg(tmp_path, trials=5, study="fresh")
    search(new)
    from nas.search.storage import open_storage

    stored = optuna.load_study(study_name="fresh", storage=open_storage(new.storage))
    assert stored.user_attrs["config"]["sampler"] == "front"


def test_settings_follow_the_budget():
    small, big = FrontSettings.for_budget(50), FrontSettings.for_budget(10_000)
    assert small.init == 8 and FrontSettings.for_budget(200).init == 20
    assert big.new_per_trial < small.new_per_trial and big.refit_every > 1


def test_a_study_made_with_a_sampler_object_asks_for_that_kind_to_resume(macro):
    import optuna

    storage = optuna.storages.InMemoryStorage()
    macro_search(macro, optuna.samplers.QMCSampler(seed=0), storage=storage, study="q").optimize(3)
    with pytest.raises(NasError, match="created with a QMCSampler passed as an object") as err:
        macro_search(macro, None, storage=storage, study="q")
    assert err.value.argument == "sampler"
    macro_search(macro, optuna.samplers.QMCSampler(seed=0), storage=storage, study="q").optimize(5)


def test_the_first_trials_reach_the_fastest_and_smallest_feasible_networks(macro):
    """The design's corners: the exhaustive minimum of each cheap objective among the networks that meet the
    budgets, found by descent on the tables, is among the first trials (random sampling rarely goes there)."""
    import itertools

    space, table = macro
    options = space.choice_options()
    every = [space.sample(lambda n, _o, c=dict(zip(options, combo)): c[n])
             for combo in itertools.product(*options.values())]
    run = macro_search(macro, FrontSampler(seed=0, trials=60), objectives=["proxy", "latency", "size"])
    cheap = [run.evaluator.cheap(a) for a in every]
    lat = np.array([m["latency_ms.x86-2vcpu"] for m in cheap])
    size = np.array([m["size_mb"] for m in cheap])
    budget = float(np.quantile(lat, 0.1))
    ok = lat <= budget
    run = macro_search(macro, FrontSampler(seed=0, trials=60), objectives=["proxy", "latency", "size"],
                       constraints={"latency_ms": budget})
    run.optimize(2)
    metrics = [t.user_attrs["metrics"] for t in run.study.trials]
    assert all(m["feasible"] for m in metrics)
    assert min(m["latency_ms.x86-2vcpu"] for m in metrics) == pytest.approx(lat.min())
    assert min(m["size_mb"] for m in metrics) == pytest.approx(size[ok].min())
    random_min = min(table.predict(a, space).latency_ms for a in space.sample_many(60, seed=0))
    assert random_min > lat.min()  # 60 random networks would not have found it
