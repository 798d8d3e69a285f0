"""Profiler and validation on this machine (onnxruntime), kept small: one or two architectures, few repeats."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import run_cli
from nas.latency import read_table
from nas.latency.load import load as load_latency
from nas.latency.measure.profile import (REFERENCE, ProfileConfig, measure_paired, overhead_timer, profile_space,
                                 reference_timer)
from nas.latency.signatures import arch_layers
from nas.space import load_space

SPACE = "mobilenet-c10"
FAST = ProfileConfig(threads=1, warmup=1, repeats=3, rounds=1, batch=64)


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    d = tmp_path_factory.mktemp("lut")
    s = load_space(SPACE)
    archs = s.sample_many(2, seed=4)
    csv = d / "archs.csv"
    pd.DataFrame({"arch": [s.format(a) for a in archs]}).to_csv(csv, index=False)
    path = profile_space(SPACE, "unit-cpu", dtypes=["fp32", "int8"], archs_csv=str(csv), config=FAST, out_dir=d,
                         progress=False)
    return path, csv, archs


def test_profile_writes_a_valid_table_with_protocol(profiled):
    path, _, archs = profiled
    s = load_space(SPACE)
    table = read_table(path)
    need = set(arch_layers(archs, s, "fp32")) | set(arch_layers(archs, s, "int8"))
    assert {sig for _, sig in table.entries} == need
    assert all(e.repeats == 3 and e.latency_ms >= 0 for e in table.entries.values())
    assert sum(e.latency_ms > 0 for e in table.entries.values()) > 0.9 * len(need)
    meta = table.meta
    assert meta["runtime"].startswith("onnxruntime") and meta["threads"] == 1 and meta["spread"] == "iqr"
    assert "overhead" in meta["protocol"] and meta["dtype"] == "fp32,int8" and meta["spaces"] == [SPACE]
    assert meta["protocol_version"] == 2 and meta["reference_ms"] > 0 and meta["reference_kernel"] == REFERENCE.key
    notes = [e.note for (_, sig), e in table.entries.items() if sig[-2:] == (8, 8)]
    assert notes and all("Q/DQ boundary" in n for n in notes)
    for dtype in ("fp32", "int8"):
        model = load_latency(str(path), dtype=dtype)
        for a in archs:
            pred = model.predict(a, s)
            assert pred.latency_ms > 0 and not pred.estimated


def test_profile_resumes_measuring_only_what_is_missing(profiled, tmp_path, capsys):
    path, csv, _ = profiled
    lines = path.read_text().splitlines()
    work = tmp_path / "unit-cpu.csv"
    work.write_text("\n".join(lines[:-3]) + "\n")  # "interrupted": the last 3 rows are missing
    (tmp_path / "unit-cpu.meta.yaml").write_text(path.with_name("unit-cpu.meta.yaml").read_text())
    rc, out, err = run_cli(capsys, "lut", "profile", "--space", SPACE, "--device-name", "unit-cpu", "--dtype",
                           "fp32,int8", "--archs", csv, "--out-dir", tmp_path, "--warmup", 1, "--repeats", 3,
                           "--rounds", 1)
    assert rc == 0, err
    assert "3 signature(s) measured" in out
    new = work.read_text().splitlines()
    assert new[:-3] == lines[:-3] and len(new) == len(lines)


def test_profile_refuses_to_mix_thread_settings(profiled, capsys):
    path, csv, _ = profiled
    rc, _, err = run_cli(capsys, "lut", "profile", "--space", SPACE, "--device-name", "unit-cpu", "--archs", csv,
                         "--out-dir", path.parent, "--threads", 2)
    assert rc == 2 and "threads=1" in err and err.count("\n") == 1


def test_profile_refuses_to_extend_an_unpaired_table(profiled, tmp_path, capsys):
    """A protocol-1 table (plain times, no reference_ms) cannot be extended with paired ratios."""
    path, csv, _ = profiled
    (tmp_path / "old.csv").write_text(path.read_text())
    meta = yaml.safe_load(path.with_name("unit-cpu.meta.yaml").read_text())
    del meta["reference_ms"], meta["protocol_version"]
    (tmp_path / "old.meta.yaml").write_text(yaml.safe_dump(meta))
    rc, _, err = run_cli(capsys, "lut", "profile", "--space", SPACE, "--device-name", "old", "--archs", csv,
                         "--out-dir", tmp_path)
    assert rc == 2 and "protocol 1" in err and "another --device-name" in err and err.count("\n") == 1


def test_paired_ratios_cancel_the_machine_speed(tmp_path):
    """The reference timed against itself is a ratio of ~1; the overhead model's ratio is far below 1."""
    ref = reference_timer(tmp_path, 1)
    paired = measure_paired([overhead_timer(tmp_path, 1), ref], ref, warmup=2, repeats=15, rounds=2)
    assert len(paired.reference) == 60 and all(len(r) == 30 for r in paired.ratios)
    assert 0.7 < float(np.median(paired.ratios[1])) < 1.4
    assert float(np.median(paired.ratios[0])) < 0.2


def test_profile_needs_archs_or_all(capsys):
    rc, _, err = run_cli(capsys, "lut", "profile", "--space", SPACE, "--device-name", "x")
    assert rc == 2 and "exactly one of --archs" in err


def test_mixed_bits_are_profiled_with_dtype_arch(tmp_path):
    """w4a8 / w8a32 / w4a32 / w32a8 layers are deployed by nas.nn.quantize; only a8 layers pay the Q/DQ boundary."""
    from nas.layers import plan

    s = load_space(SPACE)
    arch = s.sample_many(1, seed=0)[0]
    csv = tmp_path / "a.csv"
    pd.DataFrame({"arch": [s.format(arch)]}).to_csv(csv, index=False)
    path = profile_space(SPACE, "x", dtypes=["arch"], archs_csv=str(csv), config=FAST, out_dir=tmp_path,
                         progress=False)
    table = read_table(path)
    bits = {sig[-2:] for _, sig in table.entries}
    assert len(bits) > 2  # the sampled architecture mixes bit-widths
    for (_, sig), e in table.entries.items():
        assert ("Q/DQ boundary" in e.note) == (sig[-1] < 32)
    assert load_latency(str(path), dtype="arch").predict(arch, s).latency_ms > 0
    assert len(table.entries) == len({l.signature for l in plan(arch, s)})


def test_validate_calibrate_stores_and_predict_uses_it(profiled, tmp_path):
    import shutil

    from nas.latency.measure.validate import validate

    path, csv, archs = profiled
    shutil.copy(path, tmp_path / "v.csv")
    shutil.copy(path.with_name("unit-cpu.meta.yaml"), tmp_path / "v.meta.yaml")
    out = tmp_path / "val.csv"
    rep = validate(str(tmp_path / "v.csv"), SPACE, dtype="fp32", archs_csv=str(csv), calibrate=True, rounds=1,
                   output=str(out), progress=False)
    df = pd.read_csv(out)
    assert list(df.columns[:4]) == ["arch", "table_ms", "measured_ms", "measured_iqr_ms"] and len(df) == 2
    assert (df["measured_ms"] > 0).all()
    assert {"mape_pct", "within10_pct", "spearman"} <= set(rep.raw)
    meta = yaml.safe_load((tmp_path / "v.meta.yaml").read_text())
    cal = meta["calibration"]["fp32"]
    assert cal["n"] == 2 and cal["scale"] > 0 and "table_sum" in cal["model"] and cal["form"] == "scale"
    assert set(cal["metrics"]) >= {"in_sample", "leave_one_out", "loo_mape_pct"}
    assert "calibrated_loo_ms" in df.columns
    assert any("reference kernel ran" in n for n in rep.notes)
    s = load_space(SPACE)
    model = load_latency(str(tmp_path / "v.csv"), dtype="fp32")
    pred = model.predict(archs[0], s)
    assert pred.calibrated and model.identity["calibrated"]
    assert pred.latency_ms == pytest.approx(cal["scale"] * pred.raw_ms)
    assert "calibration" not in (load_latency(str(tmp_path / "v.csv"), dtype="int8").identity)
    assert "summary" not in rep.summary() and "calibration stored" in rep.summary()


def test_calibrating_on_a_drifted_machine_warns(profiled, tmp_path, monkeypatch):
    """When the reference kernel ran far off its profiling-time speed, --calibrate stores the fit but warns."""
    import shutil

    from nas.latency.measure import validate as V

    path, csv, archs = profiled
    shutil.copy(path, tmp_path / "v.csv")
    shutil.copy(path.with_name("unit-cpu.meta.yaml"), tmp_path / "v.meta.yaml")
    ref = read_table(tmp_path / "v.csv").meta["reference_ms"]
    for session_ref, warned in ((ref * 1.5, True), (ref * 1.02, False)):
        monkeypatch.setattr(V, "measure_networks", lambda archs, *a, **k: V.Measured(
            [(1.0 + i, 0.1) for i in range(len(archs))], k["reference_ms"], session_ref))
        rep = V.validate(str(tmp_path / "v.csv"), SPACE, dtype="fp32", archs_csv=str(csv), calibrate=True,
                         progress=False)
        assert any(n.startswith("WARNING: the machine ran at") for n in rep.notes) == warned
        assert rep.calibration.metrics["reference_slowdown"] == pytest.approx(session_ref / ref)
