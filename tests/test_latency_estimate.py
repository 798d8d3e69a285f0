"""The explicit estimator behind allow_estimate=True (nas.latency.estimate): flagged, never 0, not a constant."""
from __future__ import annotations

from conftest import ROOT
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


def test_item13_estimated_layers_get_an_estimated_energy_on_a_table_with_energy(tmp_path):
    """bitfusion has energy: a layer it lacks (a 7x7 depth-wise conv at 4-bit activations, outside APQ's space)
    gets latency *and* energy from the same documented estimator, fitted on the table's own energy rows; the
    prediction keeps its energy (an energy objective or budget works with allow_estimate=True)."""
    text = (ROOT / "search_spaces" / "apq.yaml").read_text()
    text = text.replace("k7: {op: ir, kernel: 7, dw_abits: [6, 8]}", "k7: {op: ir, kernel: 7}")
    (tmp_path / "apq-a4.yaml").write_text(text.replace("name: apq", "name: apq-a4", 1))
    s = load_space(tmp_path / "apq-a4.yaml")
    model = load_latency("bitfusion")
    arch = next(a for a in s.sample_many(50, seed=1)
                if any(b.kernel == 7 and b.dw_abits == 4 for b in a.blocks))
    pred = model.predict(arch, s, allow_estimate=True)
    est = [r for r in pred.rows if r.estimated]
    assert est and pred.estimated
    assert pred.energy_mJ is not None and pred.energy_mJ > 0
    assert all(r.energy_mJ is not None and r.energy_mJ > 0 for r in pred.rows)
    energy = Estimator({sig: e.energy_mJ for (_, sig), e in model.table.entries.items()})
    k7 = next(spec for spec in plan(arch, s) if spec.kernel == 7 and spec.dw_abits == 4)
    dw = next(c for c in k7.convs() if c.groups > 1)
    assert model.estimate_energy(dw) == energy.estimate(deploy(dw, "arch")) > 0
    assert pred.energy_mJ == sum(r.energy_mJ for r in pred.rows)


def test_item13_a_table_without_energy_estimates_none():
    s = load_space("mobilenet-c10")
    pred = load_latency("raspi4").predict(s.sample_many(1, seed=1)[0], s, allow_estimate=True)
    assert pred.estimated and pred.energy_mJ is None
