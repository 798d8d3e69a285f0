"""Transferred latency models (`nas lut adapt` / `nas lut suggest`): fit, file, loading everywhere a table
loads, quality report, determinism, bad input. Synthetic devices built from the shipped tables, so only the
last test needs ../shared/data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import spearmanr

from conftest import run_cli
from nas.errors import NasError
from nas.latency.load import load as load_latency
from nas.latency.transfer.fit import adapt
from nas.latency.transfer.model import TransferredLatencyModel, layer_features
from nas.layers import plan
from nas.space import load_space

SPACE = "fbnet-c100"
FBNET = ["edgegpu", "raspi4", "pixel3", "eyeriss", "fpga"]
FROM = [a for d in FBNET for a in ("--from", d)]


def true_latency(arch, space) -> float:
    """A synthetic 'new device': 1.5 x edgegpu + 0.4 x pixel3 + 0.02 ms per kernel + 0.3 ms per network."""
    e = load_latency("edgegpu").predict(arch, space).latency_ms
    p = load_latency("pixel3").predict(arch, space).latency_ms
    kernels = sum(layer_features(s)[2] for s in plan(arch, space))
    return 1.5 * e + 0.4 * p + 0.02 * kernels + 0.3


@pytest.fixture(scope="module")
def space():
    return load_space(SPACE)


def write_measured(path, space, archs, values=None):
    values = [true_latency(a, space) for a in archs] if values is None else values
    pd.DataFrame({"arch": [space.to_native(a) for a in archs], "latency_ms": values}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def adapted(tmp_path_factory, space):
    d = tmp_path_factory.mktemp("adapt")
    csv = write_measured(d / "m.csv", space, space.sample_many(15, seed=1))
    model = adapt(SPACE, str(csv), "synthetic", sources=FBNET)
    model.write(d / "synthetic.transfer.yaml")
    return d, model


def test_adapt_recovers_a_device_built_from_the_tables(adapted, space):
    _, model = adapted
    held_out = space.sample_many(40, seed=99)
    pred = np.array([model.predict(a, space).latency_ms for a in held_out])
    true = np.array([true_latency(a, space) for a in held_out])
    assert np.max(np.abs(pred - true) / true) < 0.01
    q = model.doc["quality"]
    assert q["k"] == 15 and q["loo"]["mape_pct"] < 1 and q["loo"]["spearman"] > 0.99
    # the baseline (one table x factor) is clearly worse on this device, and reported
    assert q["baseline"]["mape_pct"] > q["loo"]["mape_pct"]


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
    arch = space.sample_many(1, seed=7)[0]
    expected = model.predict(arch, space).latency_ms
    by_path = load_latency(str(path))
    assert isinstance(by_path, TransferredLatencyModel)
    assert by_path.predict(arch, space).latency_ms == pytest.approx(expected, rel=1e-12)
    monkeypatch.setenv("NAS_LATENCY_TABLES", str(d))
    by_name = load_latency("synthetic")
    assert by_name.predict(arch, space).latency_ms == pytest.approx(expected, rel=1e-12)
    by_name.check_covers(space)


def test_cli_adapt_then_predict(tmp_path, capsys, space):
    csv = write_measured(tmp_path / "m.csv", space, space.sample_many(12, seed=2))
    out = tmp_path / "dev.transfer.yaml"
    rc, stdout, err = run_cli(capsys, "lut", "adapt", "--space", SPACE, "--measured", csv, "--device-name", "dev",
                              *FROM, "-o", out)
    assert rc == 0, err
    assert "leave-one-out" in stdout and "baseline" in stdout and out.is_file()
    arch = space.sample_many(1, seed=3)[0]
    rc, stdout, err = run_cli(capsys, "lut", "predict", "--device", out, "--space", SPACE, space.format(arch))
    assert rc == 0, err
    total = float(stdout.strip().splitlines()[-1].split()[1])
    assert total == pytest.approx(true_latency(arch, space), rel=0.01)
    # batch predict, as a search or a user would
    pd.DataFrame({"arch": [space.format(a) for a in space.sample_many(5, seed=4)]}).to_csv(tmp_path / "in.csv")
    rc, _, err = run_cli(capsys, "lut", "predict", "--device", out, "--space", SPACE, "--archs", tmp_path / "in.csv",
                         "-o", tmp_path / "p.csv")
    assert rc == 0, err and len(pd.read_csv(tmp_path / "p.csv")) == 5


def test_adapt_is_deterministic(tmp_path, space):
    csv = write_measured(tmp_path / "m.csv", space, space.sample_many(8, seed=3))
    a = adapt(SPACE, str(csv), "x", sources=FBNET).doc
    b = adapt(SPACE, str(csv), "x", sources=FBNET).doc
    assert a["coefficients"] == b["coefficients"] and a["quality"] == b["quality"]


def test_quality_warns_on_few_and_uniform_measurements(tmp_path, space):
    archs = space.sample_many(4, seed=4)
    few = adapt(SPACE, str(write_measured(tmp_path / "few.csv", space, archs)), "x", sources=FBNET)
    assert any("only 4 measurements" in w for w in few.doc["quality"]["warnings"])
    flat = adapt(SPACE, str(write_measured(tmp_path / "flat.csv", space, space.sample_many(12, seed=5),
                                           [10.0 + 0.01 * i for i in range(12)])), "x", sources=FBNET)
    assert any("too uniform" in w for w in flat.doc["quality"]["warnings"])
    good = adapt(SPACE, str(write_measured(tmp_path / "good.csv", space, space.sample_many(12, seed=6))), "x",
                 sources=FBNET)
    assert good.doc["quality"]["warnings"] == []


def test_suggest_writes_a_csv_to_fill_in_deterministically(tmp_path, capsys, space):
    paths = [tmp_path / f"{i}.csv" for i in range(3)]
    for p, seed in zip(paths, (0, 0, 1)):
        rc, _, err = run_cli(capsys, "lut", "suggest", "--space", SPACE, "--n", "6", "--seed", seed, *FROM,
                             "--pool", "300", "-o", p)
        assert rc == 0, err
    df = pd.read_csv(paths[0], keep_default_na=False)
    assert list(df.columns) == ["arch", "latency_ms"] and len(df) == 6 and set(df["latency_ms"]) == {""}
    assert len({space.parse(a) for a in df["arch"]}) == 6
    assert paths[0].read_text() == paths[1].read_text() != paths[2].read_text()


def test_suggest_spreads_over_the_features(space):
    """The suggested set covers the source-latency range of its pool better than a random set of its size."""
    from nas.latency.transfer.suggest import suggest

    pool = list(dict.fromkeys(space.sample_many(400, seed=0)))
    edge = load_latency("edgegpu")

    def spread(archs):
        v = [edge.predict(a, space).latency_ms for a in archs]
        return max(v) - min(v)

    picked = suggest(space, 8, seed=0, sources=FBNET, candidates=pool)
    randoms = [spread(pool[i * 8:(i + 1) * 8]) for i in range(10)]
    assert spread(picked) > np.median(randoms)


@pytest.mark.parametrize("rows, message", [
    ([("k3_e1|nope", 1.0)], "nope"),
    ([("A", 0.0)], "latency_ms must be a positive number"),
    ([("A", -2.0)], "latency_ms must be a positive number"),
    ([("A", "fast")], "is not a number"),
])
def test_bad_measurements_are_one_line_errors(tmp_path, capsys, space, rows, message):
    good = [(space.to_native(a), 5.0 + i) for i, a in enumerate(space.sample_many(5, seed=8))]
    native = space.to_native(space.sample_many(1, seed=9)[0])
    bad = [(native if a == "A" else a, v) for a, v in rows]
    pd.DataFrame(good + bad, columns=["arch", "latency_ms"]).to_csv(tmp_path / "m.csv", index=False)
    rc, _, err = run_cli(capsys, "lut", "adapt", "--space", SPACE, "--measured", tmp_path / "m.csv",
                         "--device-name", "x", *FROM, "-o", tmp_path / "x.transfer.yaml")
    assert rc == 2 and message in err and "row 6" in err and err.strip().count("\n") == 0


def test_too_few_missing_column_and_space_mismatch(tmp_path, capsys, space):
    archs = space.sample_many(3, seed=10)
    # k < 3 distinct (a repeated architecture counts once)
    write_measured(tmp_path / "two.csv", space, [archs[0], archs[1], archs[0]], [3.0, 4.0, 3.1])
    with pytest.raises(NasError, match="2 distinct measured architecture"):
        adapt(SPACE, str(tmp_path / "two.csv"), "x", sources=FBNET)
    pd.DataFrame({"arch": [space.to_native(a) for a in archs], "ms": [1, 2, 3]}).to_csv(tmp_path / "c.csv")
    rc, _, err = run_cli(capsys, "lut", "adapt", "--space", SPACE, "--measured", tmp_path / "c.csv",
                         "--device-name", "x", *FROM, "-o", tmp_path / "x.yaml")
    assert rc == 2 and "no column 'latency_ms'" in err
    # a source table that does not cover the space
    write_measured(tmp_path / "m.csv", space, archs)
    with pytest.raises(NasError, match="note10"):
        adapt(SPACE, str(tmp_path / "m.csv"), "x", sources=["note10"])
    # using the model with another space
    model = adapt(SPACE, str(tmp_path / "m.csv"), "x", sources=FBNET)
    other = load_space("fbnet-in1k")
    with pytest.raises(NasError, match="fitted for space fbnet-c100, not fbnet-in1k"):
        model.predict(other.sample_many(1)[0], other)
    with pytest.raises(NasError, match="fitted for space fbnet-c100"):
        model.check_covers(other)


def test_changed_source_table_is_refused(adapted, tmp_path):
    d, model = adapted
    doc = dict(model.doc)
    doc["sources"] = [dict(s) for s in doc["sources"]]
    doc["sources"][0]["content_hash"] = "0" * 16
    (tmp_path / "y.transfer.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(NasError, match="changed since the transfer was fitted"):
        load_latency(str(tmp_path / "y.transfer.yaml"))


def test_transfer_to_a_measured_device(shared_data):
    """Development check on HELP's measured Xeon Gold 6226 (see experiments/latency_transfer_benchmark.py)."""
    space = load_space(SPACE)
    dev = pd.read_csv(shared_data / "dev" / "fbnet_measured_latency_dev.csv").iloc[:600]
    idx = np.random.default_rng(0).choice(len(dev), 20, replace=False)
    rest = np.setdiff1d(np.arange(len(dev)), idx)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pd.DataFrame({"arch": dev["arch_str"].iloc[idx], "latency_ms": dev["gold_6226_ms"].iloc[idx]}).to_csv(
            f"{tmp}/m.csv", index=False)
        model = adapt(SPACE, f"{tmp}/m.csv", "gold", sources=FBNET)
    pred = [model.predict(space.parse(a), space).latency_ms for a in dev["arch_str"].iloc[rest]]
    true = dev["gold_6226_ms"].iloc[rest].to_numpy()
    rho = spearmanr(pred, true).statistic
    mape = float(np.mean(np.abs(np.array(pred) - true) / true))
    base = model.doc["quality"]["baseline"]
    base_pred = base["factor"] * np.array([load_latency(base["source"][len("table:"):]).predict(
        space.parse(a), space).latency_ms for a in dev["arch_str"].iloc[rest]])
    assert rho > 0.88 and mape < 0.12
    assert rho > spearmanr(base_pred, true).statistic + 0.03
