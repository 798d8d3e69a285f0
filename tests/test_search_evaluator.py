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
