"""The transferred latency model (nas.latency.transfer.model): breakdown and identity, its YAML file loading
everywhere a table loads, source tables checked, and what it does with allow_estimate and calibrated."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from nas.errors import NasError
from nas.latency import LatencyTable, TableLatencyModel
from nas.latency.load import load as load_latency
from nas.latency.signatures import deploy_signature
from nas.latency.transfer.model import TransferredLatencyModel, layer_features
from nas.layers import plan
from helpers_latency import adapted, space, FBNET, TRANSFER_SPACE, adapt_synthetic  # noqa: F401 (fixtures)

SPACE = TRANSFER_SPACE


def test_breakdown_sums_to_total_and_identity_says_transferred(adapted, space):
    _, model = adapted
    arch = space.sample_many(1, seed=5)[0]
    pred = model.predict(arch, space)
    assert len(pred.rows) == len(plan(arch, space)) + 1 and pred.rows[-1].key == "network_ms"
    assert sum(r.ms for r in pred.rows) == pytest.approx(pred.latency_ms)
    assert all(r.ms >= 0 for r in pred.rows) and not pred.estimated and pred.energy_mJ is None
    ident = model.identity
    assert ident["kind"] == "transferred" and ident["k"] == 15 and ident["sources"] == FBNET


def test_file_is_plain_yaml_and_loads_by_path_and_by_name(adapted, space, monkeypatch):
    d, model = adapted
    path = d / "synthetic.transfer.yaml"
    doc = yaml.safe_load(path.read_text())
    assert doc["kind"] == "transferred" and doc["k"] == 15 and doc["space"] == SPACE and doc["date"]
    assert [s["device"] for s in doc["sources"]] == FBNET and len(doc["measurements"]) == 15
    assert not list(d.glob("*.tmp"))  # written atomically
    arch = space.sample_many(1, seed=7)[0]
    expected = model.predict(arch, space).latency_ms
    by_path = load_latency(str(path))
    assert isinstance(by_path, TransferredLatencyModel)
    assert by_path.predict(arch, space).latency_ms == pytest.approx(expected, rel=1e-12)
    monkeypatch.setenv("NAS_LATENCY_TABLES", str(d))
    by_name = load_latency("synthetic")
    assert by_name.predict(arch, space).latency_ms == pytest.approx(expected, rel=1e-12)
    by_name.check_covers(space)


def test_changed_source_table_is_refused(adapted, tmp_path):
    d, model = adapted
    doc = dict(model.doc)
    doc["sources"] = [dict(s) for s in doc["sources"]]
    doc["sources"][0]["content_hash"] = "0" * 16
    (tmp_path / "y.transfer.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(NasError, match="changed since the transfer was fitted"):
        load_latency(str(tmp_path / "y.transfer.yaml"))


def _without(model: TransferredLatencyModel, device: str, signature: tuple) -> TransferredLatencyModel:
    """``model`` over the same sources, except that ``device``'s table lacks ``signature``."""
    sources = []
    for src in model.sources:
        if src.device == device:
            t = src.table
            entries = {k: e for k, e in t.entries.items() if k[1] != deploy_signature(signature, src.dtype)}
            src = TableLatencyModel(LatencyTable(dict(t.meta), entries, t.csv_path), dtype=src.dtype,
                                    use_calibration=False)
        sources.append(src)
    return TransferredLatencyModel(model.doc, sources=sources)


def test_a_layer_a_source_lacks_is_an_error_or_with_allow_estimate_a_flagged_estimate(adapted, space):
    """Bug 8: allow_estimate was ignored (the first missing layer always raised, unlisted)."""
    _, model = adapted
    arch = space.sample_many(1, seed=5)[0]
    specs = plan(arch, space)
    gone = next(s for s in specs if s.op == "ir")
    broken = _without(model, "raspi4", gone.signature)
    with pytest.raises(NasError, match="table 'raspi4' has no entry for 1 layer signature") as exc:
        broken.predict(arch, space)
    assert gone.key in str(exc.value) and "allow_estimate=True" in exc.value.fix
    pred = broken.predict(arch, space, allow_estimate=True)
    assert pred.estimated and {r.key for r in pred.rows if r.estimated} == {gone.key}
    assert sum(r.ms for r in pred.rows) == pytest.approx(pred.latency_ms)
    # the estimated row prices the layer with the source table's own estimator
    raspi4 = broken.sources[FBNET.index("raspi4")]
    feats = [raspi4.estimate(gone) if s is raspi4 else s.table.lookup(gone.signature, arch.resolution).latency_ms
             for s in broken.sources] + list(layer_features(gone))
    row = next(r for r in pred.rows if r.estimated)
    assert row.ms == pytest.approx(float(np.dot(feats, model.coef[:-1])))
    # every other row is what the complete model says
    full = model.predict(arch, space)
    assert [r.ms for r in pred.rows if not r.estimated] == pytest.approx(
        [r.ms for r, p in zip(full.rows, pred.rows) if not p.estimated])
    with pytest.raises(NasError, match="no entry for"):  # an estimate is never served without allow_estimate
        broken.predict(arch, space)
    with pytest.raises(NasError, match="table 'raspi4' has no entry"):
        broken.check_covers(space)


def test_a_transferred_model_has_no_calibration_whatever_calibrated_says(adapted, space):
    d, model = adapted
    arch = space.sample_many(1, seed=6)[0]
    on, off = model.predict(arch, space, calibrated=True), model.predict(arch, space, calibrated=False)
    assert on.to_dict() == off.to_dict()
    assert on.calibrated is False and on.raw_ms == on.latency_ms and model.identity["calibrated"] is False
    loaded = load_latency(str(d / "synthetic.transfer.yaml"), calibrated=False)
    assert loaded.predict(arch, space).latency_ms == pytest.approx(on.latency_ms, rel=1e-12)


def test_kernels_count_the_channel_shuffle_and_dw_macs_are_the_depthwise_convs(space):
    """A grouped expand conv is followed by a channel shuffle in the built network (nas.nn.build): one kernel
    more than the same block ungrouped (version 1, the count models were fitted with before, missed it);
    dw_macs_M is the depth-wise conv's share of the MACs."""
    def first_block(op):
        return next(s for s in plan(space.parse(op + "|" + "|".join(["skip"] * 21)), space) if s.op == "ir")

    grouped, plain = first_block("k3_e1_g2"), first_block("k3_e1")
    assert grouped.groups == 2 and grouped.expand_conv and plain.groups == 1
    names = ("macs_M", "params_M", "kernels", "activations_M", "layers", "dw_macs_M")
    g, p, old = (dict(zip(names, layer_features(s, v))) for s, v in ((grouped, 2), (plain, 2), (grouped, 1)))
    assert g["kernels"] == p["kernels"] + 1 and old["kernels"] == p["kernels"]
    assert p["kernels"] == 3 + grouped.residual  # expand, depth-wise, project (+ the residual add)
    dw = grouped.parts()[grouped.depthwise_index][2] / 1e6
    assert g["dw_macs_M"] == pytest.approx(dw) and 0 < dw < g["macs_M"] and old["dw_macs_M"] == 0


def test_a_model_without_feature_version_predicts_as_it_was_fitted_and_an_unknown_version_is_refused(
        adapted, space, tmp_path):
    """Models fitted before feature_version 2 keep their predictions (their kernel count had no shuffle)."""
    d, model = adapted
    doc = dict(model.doc, coefficients={"kernels": 0.1, "network_ms": 1.0})
    arch = space.parse("k3_e1_g2|" + "|".join(["k3_e1"] * 21))
    count = {v: sum(layer_features(s, v)[2] for s in plan(arch, space)) for v in (1, 2)}
    assert count[2] > count[1]
    new = TransferredLatencyModel(doc, sources=model.sources)
    assert new.predict(arch, space).latency_ms == pytest.approx(0.1 * count[2] + 1.0)
    legacy = {k: v for k, v in doc.items() if k != "feature_version"}
    old = TransferredLatencyModel(legacy, sources=model.sources)
    assert old.predict(arch, space).latency_ms == pytest.approx(0.1 * count[1] + 1.0)
    assert old.content_hash() != new.content_hash()
    with pytest.raises(NasError, match="feature_version 9 is not supported"):
        TransferredLatencyModel(dict(doc, feature_version=9), sources=model.sources)
    # version 2 (fitted with `layers`, which version 3 no longer fits) predicts with its layers coefficient
    v2 = TransferredLatencyModel(dict(doc, feature_version=2, coefficients={"layers": 0.2, "network_ms": 1.0}),
                                 sources=model.sources)
    layers = sum(s.computes for s in plan(arch, space))
    assert v2.predict(arch, space).latency_ms == pytest.approx(0.2 * layers + 1.0)
