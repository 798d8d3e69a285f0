"""Scoring architectures for a search: metrics cached by canonical architecture."""
from helpers_search import fast_cfg


def test_identical_architectures_are_scored_once(tmp_path):
    cfg = fast_cfg(tmp_path)
    from nas.search.run import search_from_config
    from nas.space import load_space

    ev = search_from_config(cfg).evaluator
    arch = load_space("fbnet-c100").sample_many(1, seed=0)[0]
    first = ev.evaluate(arch)
    calls = []
    ev.scorer.score = lambda a: calls.append(a) or {"params": 0.0}
    assert ev.evaluate(arch) is first and calls == []


def test_item15_screening_caches_are_bounded_and_scored_networks_are_kept(tmp_path, monkeypatch):
    """Every screened candidate's plan (~7 KB) and cheap metrics (~5 KB) were kept: ~0.3 GB over a 1,500-trial
    search. Now the last PLAN_CACHE_SIZE plans and CHEAP_CACHE_SIZE cheap metrics are kept; the scored networks
    (one a trial, what keeps a network from being scored twice) all stay; an evicted candidate is priced again
    to the same metrics."""
    import nas.search.evaluator as evaluator_module
    from nas.search.run import search_from_config

    monkeypatch.setattr(evaluator_module, "PLAN_CACHE_SIZE", 16)
    monkeypatch.setattr(evaluator_module, "CHEAP_CACHE_SIZE", 32)
    ev = search_from_config(fast_cfg(tmp_path)).evaluator
    archs = ev.space.sample_many(200, seed=1)
    first = [dict(ev.cheap(a)) for a in archs]
    assert len(ev._layers) == 16 and len(ev._cheap) == 32
    assert [ev.cheap(a) for a in archs[:5]] == first[:5]  # evicted long ago: priced again, the same
    for a in archs[:40]:
        ev.evaluate(a)
    assert len(ev.cache) == len({ev.network(a) for a in archs[:40]})  # every scored network is kept
    calls = []
    ev.scorer.score = lambda a: calls.append(a) or {"params": 0.0}
    assert all(ev.evaluate(a) for a in archs[:40]) and calls == []
