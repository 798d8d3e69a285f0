"""Fitting a transferred latency model (nas.latency.transfer.adapt, `nas lut adapt`): accuracy on a synthetic
device built from the shipped tables, the quality report, determinism, bad input. Only the last test needs
../shared/data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from conftest import run_cli
from nas.errors import NasError
from nas.latency.load import load as load_latency
from nas.latency.transfer.adapt import adapt
from nas.latency.transfer.model import layer_features
from nas.layers import plan
from nas.space import load_space
from helpers_latency import adapted, space, FBNET, FROM, TRANSFER_SPACE, adapt_synthetic, true_latency, write_measured  # noqa: F401 (fixtures)

SPACE = TRANSFER_SPACE


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


def test_unknown_source_names_the_sources_argument(tmp_path, capsys, space):
    csv = write_measured(tmp_path / "m.csv", space, space.sample_many(5, seed=11))
    with pytest.raises(NasError, match="unknown device 'raspi5'") as exc:
        adapt(SPACE, str(csv), "x", sources=["raspi5"])
    assert exc.value.argument == "sources" and "--" not in str(exc.value)
    rc, _, err = run_cli(capsys, "lut", "adapt", "--space", SPACE, "--measured", csv, "--device-name", "x",
                         "--from", "raspi5", "-o", tmp_path / "x.transfer.yaml")
    assert rc == 2 and err.startswith("nas: error: --from: unknown device 'raspi5'")


@pytest.mark.slow
def test_transfer_to_a_measured_device(shared_data):
    """Development check on HELP's measured Xeon Gold 6226 (see experiments/latency/latency_transfer_benchmark.py)."""
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


def test_per_layer_corrections_from_20_measurements_fix_what_the_sources_cannot_explain(tmp_path, space):
    """A device where every k5_e6 layer costs 3 ms more than the sources say: no combination of the source tables
    explains it, per-layer corrections (chosen by cross-validation, k >= 20) do; below 20 none are tried."""
    def device(arch):
        extra = sum(3.0 for b in arch.blocks if (b.kernel, b.expand) == (5, 6))
        return true_latency(arch, space) + extra

    archs = space.sample_many(60, seed=4)
    csv = write_measured(tmp_path / "m.csv", space, archs[:40], [device(a) for a in archs[:40]])
    model = adapt(TRANSFER_SPACE, str(csv), "odd", sources=FBNET)
    assert model.doc["quality"]["corrections"]["chosen"] != "none" and model.doc["corrections"]
    plain = adapt(TRANSFER_SPACE, str(write_measured(tmp_path / "few.csv", space, archs[:15],
                                                     [device(a) for a in archs[:15]])), "few", sources=FBNET)
    assert "corrections" not in plain.doc and plain.doc["quality"]["corrections"] == {}
    held = archs[40:]
    real = np.array([device(a) for a in held])
    fixed = np.array([model.predict(a, space).latency_ms for a in held])
    model.corrections, model.network_correction = {}, 0.0  # the same fit without its corrections
    bare = np.array([model.predict(a, space).latency_ms for a in held])
    assert np.mean(np.abs(fixed / real - 1)) < 0.7 * np.mean(np.abs(bare / real - 1))
    path = model.write(tmp_path / "odd.transfer.yaml")
    again = load_latency(str(path))
    assert again.corrections and again.predict(held[0], space).latency_ms == pytest.approx(fixed[0])


def test_dw_macs_enter_the_fit_only_where_cross_validation_prefers_them(tmp_path, space):
    """A device that pays 2 ms per million depth-wise MACs beyond what the sources say: from 20 measurements on,
    cross-validation takes dw_macs_M in and held-out networks are predicted within 1 %; the synthetic device
    without that cost keeps it out, and below 20 measurements it is not tried (as for corrections)."""
    from nas.latency.transfer.adapt import quality_summary

    def dw_heavy(arch):
        return true_latency(arch, space) + 2.0 * sum(layer_features(s)[5] for s in plan(arch, space))

    archs = space.sample_many(60, seed=8)
    csv = write_measured(tmp_path / "dw.csv", space, archs[:20], [dw_heavy(a) for a in archs[:20]])
    model = adapt(SPACE, str(csv), "dw", sources=FBNET)
    x = model.doc["quality"]["extra_features"]
    assert x["chosen"] == "with" and x["cv_mape_pct"]["with"] < x["cv_mape_pct"]["without"]
    assert model.doc["coefficients"]["dw_macs_M"] > 0 and model.doc["feature_version"] == 3
    pred = np.array([model.predict(a, space).latency_ms for a in archs[20:]])
    assert np.max(np.abs(pred / np.array([dw_heavy(a) for a in archs[20:]]) - 1)) < 0.01
    assert "dw_macs_M: used" in quality_summary(model)
    plain = adapt(SPACE, str(write_measured(tmp_path / "m.csv", space, archs[:20])), "plain", sources=FBNET)
    assert plain.doc["quality"]["extra_features"]["chosen"] == "without"
    assert "dw_macs_M" not in plain.doc["coefficients"] and "dw_macs_M: not used" in quality_summary(plain)
    csv = write_measured(tmp_path / "few.csv", space, archs[:19], [dw_heavy(a) for a in archs[:19]])
    few = adapt(SPACE, str(csv), "few", sources=FBNET)
    assert "extra_features" not in few.doc["quality"] and "dw_macs_M" not in few.doc["coefficients"]


def test_layers_is_not_fitted_from_feature_version_3(tmp_path, space):
    """A device that pays 0.3 ms per computing layer: the kernel count and the network constant take it (every
    computing layer launches >= 1 kernel); `layers`, their near-collinear twin, is never fitted (version 3), while
    the version-2 fit of the same measurements used it."""
    from nas.latency.transfer.adapt import NETWORK_FEATURE, Features, fit_selected, load_sources

    def per_layer(arch):
        return true_latency(arch, space) + 0.3 * sum(s.computes for s in plan(arch, space))

    archs = space.sample_many(12, seed=12)
    model = adapt(SPACE, str(write_measured(tmp_path / "m.csv", space, archs, [per_layer(a) for a in archs])),
                  "lay", sources=FBNET)
    assert model.doc["feature_version"] == 3 and "layers" not in model.doc["coefficients"]
    assert model.doc["coefficients"]["kernels"] > 0
    feats = Features(load_sources(FBNET, space, None), space)
    F, y, names = feats.matrix(archs), np.array([per_layer(a) for a in archs]), feats.names + [NETWORK_FEATURE]
    assert fit_selected(F, y, names, select=False, version=2)[0][names.index("layers")] > 0
    assert fit_selected(F, y, names, select=False, version=3)[0][names.index("layers")] == 0
