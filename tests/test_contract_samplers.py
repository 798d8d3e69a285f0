"""One contract over every registered sampler (package issue 5): a study resumes to its trial count, keeps every
front member within budget, scores no network twice, and records the sampler's name."""
from __future__ import annotations

import optuna
import pytest

from nas.latency.load import load
from nas.proxies import Scorer
from nas.search.run import create_search
from nas.search.sampler_registry import SAMPLERS, make_sampler
from nas.space import load_space

BUDGET_MS = 26.0  # raspi4 prices fbnet-c100 at ~20-40 ms: a budget that binds


class CountingScorer(Scorer):
    """The real scorer, counting the networks it scores (the evaluator must ask once per network)."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.scored: list[str] = []

    def score(self, arch):
        self.scored.append(self.space.format(arch))
        return super().score(arch)


@pytest.fixture(autouse=True)
def quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_keeps_the_contract(name, tmp_path):
    space = load_space("fbnet-c100")
    storage = f"sqlite:///{tmp_path / 's.db'}"

    def search(n):
        scorer = CountingScorer(space, ["params"], data="digits", seed=0)
        s = create_search(space, latency=[load("raspi4")], scorer=scorer, objectives=("proxy", "latency"),
                          constraints={"latency_ms": BUDGET_MS}, sampler=make_sampler(name, seed=0, trials=40),
                          storage=storage, study="contract", trials=40)
        s.optimize(n)
        return s, scorer

    first, _ = search(15)
    assert first.complete() == 15
    again, scorer = search(40)  # resumes: 25 more, not 40
    assert again.complete() == 40
    assert len(scorer.scored) == len(set(scorer.scored)) <= 25  # no network scored twice (the cache is seeded)
    front = again.front()
    assert len(front) > 0
    assert (front["latency_ms.raspi4"] <= BUDGET_MS).all()
    recorded = str(again.study.user_attrs)
    assert name in recorded, f"the study does not record its sampler {name!r}"
