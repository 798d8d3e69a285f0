"""The explicit estimator behind allow_estimate=True (nas.latency.estimate): flagged, never 0, not a constant."""
from __future__ import annotations

from nas.latency.estimate import Estimator
from nas.latency.load import load as load_latency
from nas.latency.signatures import deploy
from nas.layers import plan
from nas.space import load_space


def test_allow_estimate_flags_rows_and_is_not_constant():
    s = load_space("mobilenet-c10")
    model = load_latency("raspi4")
    preds = [model.predict(a, s, allow_estimate=True) for a in s.sample_many(5, seed=1)]
    for p in preds:
        assert p.estimated and all(r.estimated for r in p.rows) and all(r.ms > 0 for r in p.rows)
    assert len({round(p.latency_ms, 9) for p in preds}) == 5
    # a bigger layer costs more under the estimator
    rows = preds[0].rows
    assert len({round(r.ms, 9) for r in rows}) > len(rows) // 2


def test_estimate_is_floored_at_the_smallest_positive_row_and_is_the_models():
    """Even fitted on rows that include 0-ms entries (proxyless-mobile's 'zero op'), an estimate is > 0; the
    model's public ``estimate`` is the estimator fitted on its table at its dtype."""
    s = load_space("mobilenet-c10")
    model = load_latency("proxyless-mobile", dtype="fp32")
    est = Estimator({sig: e.latency_ms for (_, sig), e in model.table.entries.items()})
    floor = min(e.latency_ms for e in model.table.entries.values() if e.latency_ms > 0)
    for spec in plan(s.sample_many(1, seed=2)[0], s):
        assert model.estimate(spec) == est.estimate(deploy(spec, "fp32")) >= floor > 0
