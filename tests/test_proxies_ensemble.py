"""The ensemble proxy: one architecture at a time, independent of what else was scored."""
from nas.proxies import Scorer

from helpers_proxies import small_reference, tiny  # noqa: F401  (fixtures)


def test_cache_and_single_architecture_ensemble(tiny):
    s = Scorer(tiny, ["ensemble", "synflow"], data="digits")
    first = s.score("ir_e2_relu_w32_a32")
    spent = dict(s.seconds)
    assert s.score(tiny.parse("ir_e2_relu_w32_a32")) == first  # cache hit by canonical architecture
    assert s.seconds == spent
    # the ensemble of one architecture does not depend on what else was scored before
    t = Scorer(tiny, ["ensemble", "synflow"], data="digits")
    t.score_many(["ir_e1_hswish_w8_a8", "ir_e1_relu_w4_a32"], progress=False)
    assert t.score("ir_e2_relu_w32_a32") == first
