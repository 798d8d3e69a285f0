"""A source table split by precision (nas.latency.transfer.precision): on a synthetic host whose int8 kernels
are relatively faster than the table's host's (as AVX-512 VNNI is against AVX2), a model fitted on the networks
`--measure-here` picks, at their own bits, prices all-int8 and all-fp32 deployments and orders them right; one
coefficient per table cannot."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from nas.latency.predict import TableLatencyModel
from nas.latency.signatures import deploy
from nas.latency.table import read_table
from nas.latency.transfer.adapt import adapt
from nas.latency.transfer.here import pick
from nas.latency.transfer.model import TransferredLatencyModel
from nas.latency.transfer.precision import PARTS, PrecisionPart, part_of, split
from nas.layers import LayerSpec, plan
from nas.space import load_space

SPACE = "mobilenet-c10"
FACTOR = {"float": 1.0, "int8": 0.45, "other": 1.3}  # this synthetic host runs int8 kernels 2.2x faster
DTYPES = ("arch", "int8", "fp32")


@pytest.fixture(scope="module")
def setup():
    space = load_space(SPACE)
    table = read_table("x86-2vcpu")
    models = {d: TableLatencyModel(table, dtype=d, use_calibration=False) for d in DTYPES}
    return space, models


def truth(models, arch, space, dtype: str) -> float:
    m = models[dtype]
    return 0.3 + sum(FACTOR[part_of(deploy(s, dtype))] * m.layer_ms(s, space.name, arch.resolution)
                     for s in plan(arch, space))


def test_parts_follow_how_onnxruntime_runs_a_layer():
    base = dict(name="x", op="ir", h=8, w=8, cin=16, cout=16, kernel=3, stride=1, expand=3, mid=48, act="relu")
    assert part_of(LayerSpec(**base, wbits=32, abits=32)) == "float"
    assert part_of(LayerSpec(**base, wbits=8, abits=8)) == "int8"
    for bits in ((4, 8), (8, 32), (32, 8), (4, 32)):
        assert part_of(LayerSpec(**base, wbits=bits[0], abits=bits[1])) == "other"
    assert part_of(LayerSpec(**base, wbits=8, abits=8, dw_wbits=32, dw_abits=32)) == "other"


def test_each_part_prices_its_layers_and_the_parts_sum_to_the_table(setup):
    space, models = setup
    arch = space.sample_many(1, seed=4)[0]
    parts = split([models["arch"]])
    assert [p.device for p in parts] == [f"x86-2vcpu:{p}" for p in PARTS] and isinstance(parts[0], PrecisionPart)
    for spec in plan(arch, space):
        whole = models["arch"].layer_ms(spec, space.name, arch.resolution)
        got = [p.layer_ms(spec, space.name, arch.resolution) for p in parts]
        assert sum(got) == pytest.approx(whole) and sum(g != 0 for g in got) <= 1


@pytest.mark.slow
def test_a_split_model_orders_int8_and_fp32_deployments_a_single_coefficient_cannot(setup, tmp_path):
    space, models = setup
    measured = pick(space, 20, [models["arch"]], seed=1)
    csv = tmp_path / "m.csv"
    pd.DataFrame({"arch": [space.format(a) for a in measured],
                  "latency_ms": [truth(models, a, space, "arch") for a in measured]}).to_csv(csv, index=False)
    held_out = space.sample_many(30, seed=77)
    true = np.array([[truth(models, a, space, d) for a in held_out] for d in DTYPES])
    result = {}
    for split_it in (True, False):
        doc = adapt(SPACE, str(csv), "synthetic", sources=["x86-2vcpu"], precision_split=split_it).doc
        fitted = {d: TransferredLatencyModel(doc, dtype=d, sources=split([models[d]]) if split_it else [models[d]])
                  for d in DTYPES}
        pred = np.array([[fitted[d].predict(a, space).latency_ms for a in held_out] for d in DTYPES])
        right = total = 0
        for i in range(len(held_out)):
            for a, b in itertools.combinations(range(3), 2):
                if abs(true[a, i] - true[b, i]) > 0.05 * min(true[a, i], true[b, i]):
                    total += 1
                    right += np.sign(pred[a, i] - pred[b, i]) == np.sign(true[a, i] - true[b, i])
        result[split_it] = (np.abs(pred / true - 1).max(axis=1), right / total)
    err, signs = result[True]
    assert err.max() < 0.03 and signs == 1.0  # every dtype within 3 %, every pair ordered
    plain_err, plain_signs = result[False]
    assert plain_err[1:].max() > 0.15 and plain_signs < 0.95  # the table's int8 / fp32 ratio, not this host's
