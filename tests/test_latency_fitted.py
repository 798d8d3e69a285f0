"""nas.latency.fitted (`nas lut fit`): a per-layer table from whole-network measurements, honest about itself."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from nas.errors import NasError
from nas.latency import load, read_table
from nas.latency.fitted import MIN_FIT, fit_arrays
from nas.latency.predict import TableLatencyModel
from nas.layers import plan
from nas.space import load_space

SPACE = load_space("fbnet-c100")


@pytest.fixture(scope="module")
def device():
    """A device that is exactly additive: the shipped raspi4 table's sums, plus a 0.3 ms call overhead."""
    model = load("raspi4")
    archs = SPACE.sample_many(400, seed=1)
    return archs, np.array([model.predict(a, SPACE).latency_ms + 0.3 for a in archs]), model


def test_fit_recovers_an_additive_device_and_reports_held_out_quality(device):
    archs, y, truth = device
    fitted = fit_arrays(SPACE, archs, y, "fitted-pi")
    q, table = fitted.quality, fitted.table
    assert q["heldout"]["n"] == 80 and q["heldout"]["fitted_on"] == 320
    assert q["heldout"]["spearman"] > 0.99 and q["heldout"]["mape_pct"] < 2
    assert table.meta["fitted"] is q and "fitted, not profiled" in table.meta["protocol"]
    model = TableLatencyModel(table)
    new = SPACE.sample_many(50, seed=9)
    pred = np.array([model.predict(a, SPACE, allow_estimate=True).latency_ms for a in new])
    real = np.array([truth.predict(a, SPACE).latency_ms + 0.3 for a in new])
    assert np.median(np.abs(pred / real - 1)) < 0.02
    assert all(e.latency_ms >= 0 for e in table.entries.values())
    group = table.meta["fixed"][0]
    assert group["layers"] == ["stem.0", "head.0", "head.1", "head.2"] and group["latency_ms"] > 0


def test_unexercised_signatures_get_no_row_and_are_refused_unless_estimated(device):
    archs, y, _ = device
    keep = [i for i, a in enumerate(archs) if a.stages[1].blocks[0].kernel != 5]  # never k5 in layer 1
    fitted = fit_arrays(SPACE, [archs[i] for i in keep], y[keep], "partial", holdout=0)
    assert fitted.table.meta["unexercised"] and any("never measured" in w for w in fitted.quality["warnings"])
    arch = next(a for a in SPACE.sample_many(200, seed=3) if a.stages[1].blocks[0].kernel == 5)
    model = TableLatencyModel(fitted.table)
    with pytest.raises(NasError, match="no entry"):
        model.predict(arch, SPACE)
    assert model.predict(arch, SPACE, allow_estimate=True).estimated


def test_too_few_measurements_are_refused_and_uniform_ones_warned(device):
    archs, y, _ = device
    with pytest.raises(NasError, match=f"at least {MIN_FIT}") as err:
        fit_arrays(SPACE, archs[:MIN_FIT - 1], y[:MIN_FIT - 1], "few")
    assert err.value.argument == "measured"
    uniform = fit_arrays(SPACE, archs[:30], np.full(30, 10.0) + np.linspace(0, 0.1, 30), "flat", holdout=0)
    assert any("too uniform" in w for w in uniform.quality["warnings"])
    assert any("lean on the roofline prior" in w for w in uniform.quality["warnings"])
    with pytest.raises(NasError) as err:
        fit_arrays(SPACE, archs, y, "x", holdout=1.5)
    assert err.value.argument == "holdout"


def test_cli_fit_writes_a_table_search_can_use(device, tmp_path, capsys):
    archs, y, _ = device
    csv = tmp_path / "m.csv"
    pd.DataFrame({"arch": [SPACE.to_native(a) for a in archs[:120]], "latency_ms": y[:120]}).to_csv(csv, index=False)
    rc, out, err = run_cli(capsys, "lut", "fit", "--space", "fbnet-c100", "--measured", str(csv), "--device-name",
                           "my-board", "--out-dir", str(tmp_path))
    assert rc == 0, err
    assert "held out (24, fitted on 96)" in out and "Spearman" in out
    table = read_table(str(tmp_path / "my-board.csv"))
    assert table.meta["provenance"]["source"] == str(csv)
    rc, _, err = run_cli(capsys, "lut", "fit", "--space", "fbnet-c100", "--measured", str(csv), "--device-name",
                         "b", "--holdout", "2", "--out-dir", str(tmp_path))
    assert rc == 2 and "--holdout" in err


def test_item5_a_layer_the_data_cannot_pin_gets_no_row_never_0_ms():
    """Reliability 5: 12 noisy measurements (±40 %, seed 7) drive one measured signature to 0 ms; it gets no
    row (listed as unpinned and unexercised, with a warning), so a prediction needing it fails or is estimated."""
    archs = SPACE.sample_many(12, seed=7)
    truth = load("raspi4")
    y = np.array([truth.predict(a, SPACE).latency_ms for a in archs]) * np.random.default_rng(7).uniform(0.6, 1.4, 12)
    fitted = fit_arrays(SPACE, archs, y, "noisy", holdout=0)
    unpinned = fitted.table.meta["unpinned"]
    assert unpinned and set(unpinned) <= set(fitted.table.meta["unexercised"])
    assert any("fitted to 0 ms" in w for w in fitted.quality["warnings"])
    assert not {spec.key for a in archs for spec in plan(a, SPACE)
                if (0, spec.signature) in fitted.table.entries} & set(unpinned)
    assert all(e.latency_ms > 0 for (_, sig), e in fitted.table.entries.items() if sig[0] != "skip")
    needs = next(a for a in archs if unpinned[0] in {s.key for s in plan(a, SPACE)})
    model = TableLatencyModel(fitted.table)
    with pytest.raises(NasError, match="no entry"):
        model.predict(needs, SPACE)
    assert model.predict(needs, SPACE, allow_estimate=True).estimated


def test_item5_the_reader_rejects_a_0_ms_computing_row_of_a_measured_table(tmp_path):
    """Reliability 5: a profiled or fitted table with a computing layer at <= 0 ms is refused, naming the line;
    published tables (HW-NAS-Bench's 0-ms skips) and signed boundary rows are read as they are."""
    import shutil

    from nas.latency.table import SHIPPED_DIR

    shutil.copy(SHIPPED_DIR / "x86-2vcpu.meta.yaml", tmp_path / "t.meta.yaml")
    lines = (SHIPPED_DIR / "x86-2vcpu.csv").read_text().splitlines()
    header = lines[0].split(",")
    i = next(n for n, line in enumerate(lines[1:], start=1) if line.startswith("ir,"))
    row = lines[i].split(",")
    row[header.index("latency_ms")] = "0.0"
    lines[i] = ",".join(row)
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(NasError, match=rf"t.csv line {i + 1}.*0.0 for a computing layer"):
        read_table(tmp_path / "t.csv")
    assert read_table("raspi4").entries  # published: read as published
