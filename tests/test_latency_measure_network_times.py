"""Whole-network measurements and their units (nas.latency.measure.network_times): a time measured with the paired
protocol travels with the reference-kernel time it is expressed at, so validate -> adapt -> validate compares like with
like (issue 29: the adapted model learnt times at the table's speed and was validated against raw times)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from nas.errors import NasError
from nas.latency.measure import validate as V
from nas.latency.measure.network_times import origin, read_measurements, reference_ms
from nas.latency.table import read_table
from nas.latency.transfer.adapt import adapt
from nas.space import load_space

SPACE = "mobilenet-c10"


def test_rows_at_different_reference_times_are_brought_to_one(tmp_path):
    space = load_space(SPACE)
    archs = [space.format(a) for a in space.sample_many(3, seed=0)]
    csv = tmp_path / "m.csv"
    pd.DataFrame({"arch": archs, "measured_ms": [2.0, 3.0, 4.0], "reference_ms": [0.1, 0.2, 0.1]}).to_csv(csv)
    _, y, _ = read_measurements(str(csv), space)
    assert reference_ms(str(csv)) == pytest.approx(0.1)  # the median
    assert list(y) == pytest.approx([2.0, 1.5, 4.0])  # the second row, at 0.2, is expressed at 0.1
    pd.DataFrame({"arch": archs, "latency_ms": [2.0, 3.0, 4.0]}).to_csv(csv)
    assert reference_ms(str(csv)) is None and origin(csv) == {"host": "unknown"}  # plain ms, host unknown
    assert origin(csv, "my board")["host"] == "my board"
    pd.DataFrame({"arch": archs, "latency_ms": [2.0, 3.0, 4.0], "reference_ms": [0.1, "nan", 0.1]}).to_csv(csv)
    with pytest.raises(NasError, match="reference_ms must be a positive number") as exc:
        read_measurements(str(csv), space)
    assert exc.value.where == f"{csv} row 2"


def _session(monkeypatch, ratios: dict, session_ref: float, seen: list):
    """measure_networks as on a host where each network runs ``ratios[arch]`` times the reference kernel, which
    takes ``session_ref`` ms today: values are ratios times the reference time asked for (the table's or the
    model's), else this session's, exactly as the paired protocol gives them."""
    def fake(archs, space, dtype, **k):
        seen.append(k["reference_ms"])
        ref = k["reference_ms"] or session_ref
        return V.Measured([(ratios[space.format(a)] * ref, 0.01) for a in archs], ref, session_ref)

    monkeypatch.setattr(V, "measure_networks", fake)


def test_units_validate_then_adapt_then_validate_the_adapted_model_agree(tmp_path, monkeypatch):
    """The issue's cure, end to end with a session whose reference kernel runs 1.57x faster than when the table
    was profiled: the adapted model must validate at ~0 % error, not 57 % (it learnt times at the table's speed,
    was then compared with this session's raw times)."""
    space = load_space(SPACE)
    table_ref = read_table("x86-2vcpu").meta["reference_ms"]
    rng = np.random.default_rng(0)
    archs = space.sample_many(16, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # x86-2vcpu is not this host's: not the point here
        from nas.latency.load import load

        table = load("x86-2vcpu")
    # this host: 0.6 x the table's time, in reference-kernel units, +-3 %
    ratios = {space.format(a): 0.6 * table.predict(a, space).latency_ms / table_ref * rng.uniform(0.97, 1.03)
              for a in archs}
    seen: list = []
    _session(monkeypatch, ratios, table_ref / 1.57, seen)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        V.validate("x86-2vcpu", SPACE, archs=_archs_csv(tmp_path / "a.csv", space, archs[:12]),
                   output=str(tmp_path / "val.csv"), progress=False)
    val = pd.read_csv(tmp_path / "val.csv")
    assert (val["reference_ms"] == table_ref).all() and seen == [table_ref]
    model = adapt(SPACE, str(tmp_path / "val.csv"), "here", sources=["x86-2vcpu"])  # validate's CSV as it is
    assert model.doc["reference_ms"] == pytest.approx(table_ref)
    out = model.write(tmp_path / "here.transfer.yaml")
    rep = V.validate(str(out), SPACE, archs=_archs_csv(tmp_path / "b.csv", space, archs[12:]), progress=False)
    assert seen[-1] == pytest.approx(table_ref)  # measured at the model's own reference time
    assert rep.raw["mape_pct"] < 5 and rep.raw["within10_pct"] == 100


def _archs_csv(path, space, archs) -> str:
    pd.DataFrame({"arch": [space.format(a) for a in archs]}).to_csv(path, index=False)
    return str(path)
