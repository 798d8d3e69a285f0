"""One contract over every kind of latency model (package issue 5): profiled, published, fitted, transferred and
calibrated. For each: the per-layer breakdown sums to the total, every total is positive and finite, and a
network the model cannot price raises a NasError naming what is missing (never a 0 or a guess)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nas.errors import NasError
from nas.latency.load import load
from nas.latency.predict import TableLatencyModel
from nas.latency.table import read_table, signature_key
from nas.layers import plan
from nas.space import load_space

KINDS = ("profiled", "published", "fitted", "transferred", "calibrated")


def _fitted():
    from nas.latency.fitted import fit_arrays

    space, truth = load_space("fbnet-c100"), load("raspi4")
    archs = space.sample_many(60, seed=2)
    y = np.array([truth.predict(a, space).latency_ms + 0.3 for a in archs])
    return TableLatencyModel(fit_arrays(space, archs, y, "fitted-pi", holdout=0).table), space


def _transferred(tmp_path):
    import pandas as pd

    from nas.latency.transfer.adapt import adapt

    space, truth = load_space("fbnet-c100"), load("pixel3")
    archs = space.sample_many(15, seed=1)
    csv = tmp_path / "m.csv"
    pd.DataFrame({"arch": [space.to_native(a) for a in archs],
                  "latency_ms": [1.3 * truth.predict(a, space).latency_ms + 0.2 for a in archs]}).to_csv(csv)
    return adapt("fbnet-c100", str(csv), "phone-here", sources=["raspi4", "edgegpu"]), space


def _calibrated():
    from nas.latency.calibration import Calibration

    table = read_table("x86-2vcpu")
    cal = Calibration(offset_ms=0.05, scale=0.9, per_layer_ms=0.001, n=20, dtype="arch", form="offset+scale+layers")
    table.meta["calibration"] = {"arch": cal.to_dict()}
    return TableLatencyModel(table, dtype="arch"), load_space("mobilenet-c10")


@pytest.fixture(scope="module", params=KINDS)
def kind(request, tmp_path_factory):
    """(kind, model, space, an architecture it cannot price or None when every network of the space is priced)."""
    name = request.param
    if name == "profiled":
        model, space = load("x86-2vcpu"), load_space("mobilenet-c10")
    elif name == "published":
        model, space = load("raspi4"), load_space("fbnet-c100")
    elif name == "fitted":
        model, space = _fitted()
    elif name == "transferred":
        model, space = _transferred(tmp_path_factory.mktemp("transfer"))
    else:
        model, space = _calibrated()
    return name, model, space


def test_the_breakdown_sums_to_a_positive_finite_total(kind):
    name, model, space = kind
    for arch in space.sample_many(25, seed=11):
        pred = model.predict(arch, space, allow_estimate=(name == "fitted"))
        assert math.isfinite(pred.latency_ms) and pred.latency_ms > 0, name
        assert sum(r.ms for r in pred.rows) == pytest.approx(pred.latency_ms, rel=1e-9, abs=1e-12), name


def test_a_network_it_cannot_price_raises(kind):
    """Another space's network (other shapes, other layers) is refused with a NasError, never priced at 0."""
    name, model, space = kind
    other = load_space("ofa-mbv3")
    arch = other.sample_many(1, seed=0)[0]
    with pytest.raises(NasError):
        model.predict(arch, other)


def test_a_missing_signature_raises_naming_it(kind):
    """Table kinds: drop a row an architecture needs (from a copy); the prediction names the missing layer."""
    import copy

    name, model, space = kind
    if not isinstance(model, TableLatencyModel):
        pytest.skip("a transferred model prices by features of its source tables: covered by the test above")
    arch = space.sample_many(1, seed=5)[0]
    pred = model.predict(arch, space, allow_estimate=(name == "fitted"))
    layers = {s.key for s in plan(arch, space)}
    row = next(r for r in pred.rows if not r.estimated and r.key in layers and r.ms > 0)
    table = copy.deepcopy(model.table)
    table.entries = {k: v for k, v in table.entries.items() if signature_key(k[1]) != row.key}
    broken = TableLatencyModel(table, dtype=model.dtype)
    with pytest.raises(NasError, match="no entry"):
        broken.predict(arch, space)

