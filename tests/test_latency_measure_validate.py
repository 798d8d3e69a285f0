"""Whole networks measured against a table (nas.latency.measure.validate), on the session's profiled table:
the comparison, a calibration stored on disk, the drift warning."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml

from conftest import run_cli
from nas.errors import NasError
from nas.latency import read_table
from nas.latency.load import load as load_latency
from nas.latency.measure import validate as V
from nas.space import load_space
from helpers_latency import PROFILE_SPACE, profiled_once

SPACE = PROFILE_SPACE


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    result, csv, archs = profiled_once(tmp_path_factory)
    return result.path, csv, archs


def _copy(path, tmp_path):
    shutil.copy(path, tmp_path / "v.csv")
    shutil.copy(path.with_name("unit-cpu.meta.yaml"), tmp_path / "v.meta.yaml")
    return tmp_path / "v.csv"


def _fake_measurements(monkeypatch, session_ref):
    """Whole networks 'measured' at 1, 2, ... ms, with the reference kernel at ``session_ref`` ms."""
    monkeypatch.setattr(V, "measure_networks", lambda archs, *a, **k: V.Measured(
        [(1.0 + i, 0.1) for i in range(len(archs))], k["reference_ms"], session_ref))


@pytest.mark.slow
def test_validate_calibrate_stores_and_predict_uses_it(profiled, tmp_path):
    path, csv, archs = profiled
    _copy(path, tmp_path)
    out = tmp_path / "val.csv"
    rep = V.validate(str(tmp_path / "v.csv"), SPACE, dtype="fp32", archs=str(csv), calibrate=True, rounds=1,
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


@pytest.mark.slow
def test_calibrating_on_a_drifted_machine_warns(profiled, tmp_path, monkeypatch):
    """When the reference kernel ran far off its profiling-time speed, --calibrate stores the fit but warns."""
    path, csv, archs = profiled
    _copy(path, tmp_path)
    ref = read_table(tmp_path / "v.csv").meta["reference_ms"]
    for session_ref, warned in ((ref * 1.5, True), (ref * 1.02, False)):
        _fake_measurements(monkeypatch, session_ref)
        rep = V.validate(str(tmp_path / "v.csv"), SPACE, dtype="fp32", archs=str(csv), calibrate=True,
                         progress=False)
        assert any(n.startswith("WARNING: the machine ran at") for n in rep.notes) == warned
        assert rep.calibration.metrics["reference_slowdown"] == pytest.approx(session_ref / ref)


@pytest.mark.slow
def test_calibration_on_disk_records_the_reference_slowdown(profiled, tmp_path, monkeypatch, capsys):
    """Bug 2: reference_slowdown was set after the table was written, so it never reached the .meta.yaml."""
    path, csv, _ = profiled
    table = _copy(path, tmp_path)
    ref = read_table(table).meta["reference_ms"]
    _fake_measurements(monkeypatch, ref * 1.3)
    rep = V.validate(str(table), SPACE, dtype="fp32", archs=str(csv), calibrate=True, progress=False)
    on_disk = yaml.safe_load((tmp_path / "v.meta.yaml").read_text())["calibration"]["fp32"]["metrics"]
    assert on_disk["reference_slowdown"] == pytest.approx(1.3)
    assert on_disk == yaml.safe_load(yaml.safe_dump(rep.calibration.metrics))  # disk = what the report shows
    # the same through the command line
    _fake_measurements(monkeypatch, ref * 0.8)
    rc, out, err = run_cli(capsys, "lut", "validate", "--device", table, "--space", SPACE, "--dtype", "fp32",
                           "--archs", csv, "--calibrate")
    assert rc == 0, err and "calibration stored" in out
    on_disk = yaml.safe_load((tmp_path / "v.meta.yaml").read_text())["calibration"]["fp32"]["metrics"]
    assert on_disk["reference_slowdown"] == pytest.approx(0.8)


def test_bad_arguments_name_api_arguments_and_the_cli_its_flags(capsys):
    with pytest.raises(NasError, match="must be at least 2, got 1") as exc:
        V.validate("raspi4", "fbnet-c100", n=1, progress=False)
    assert exc.value.argument == "n" and "--" not in str(exc.value)
    rc, _, err = run_cli(capsys, "lut", "validate", "--device", "raspi4", "--space", "fbnet-c100", "--n", 1)
    assert rc == 2 and err.startswith("nas: error: --n: must be at least 2, got 1")
    with pytest.raises(NasError, match="unknown device 'raspi5'") as exc:
        V.validate("raspi5", "fbnet-c100", progress=False)
    assert exc.value.argument == "device"


def test_item14_a_failed_measurement_is_left_out_of_validation_never_divided_by():
    """A network timed at or below the overhead twice (Measured.failures, value NaN) is reported per row and left
    out of the metrics and of a calibration; before, its 0 ms divided by zero."""
    from nas.latency.measure.timing import TOO_FAST

    space = load_space("fbnet-c100")
    model = load_latency("raspi4")
    archs = space.sample_many(4, seed=0)
    preds = [model.predict(a, space) for a in archs]
    measured = V.Measured([(p.latency_ms * 1.1, 0.1) for p in preds[:3]] + [(float("nan"), float("nan"))],
                          1.0, 1.0, [None, None, None, TOO_FAST])
    rep = V._compare("raspi4", "arch", 1, archs, space, preds, measured, None)
    assert rep.rows[3]["measurement_error"] == TOO_FAST and "measurement_error" not in rep.rows[0]
    assert rep.raw["n"] == 3 and rep.raw["mape_pct"] == pytest.approx(100 / 11)
    assert any(n.startswith("1 of 4 architecture(s) have no measured time") for n in rep.notes)
    assert "1 of 4" in rep.summary()
    nothing = V.Measured([(float("nan"), float("nan"))] * 4, 1.0, 1.0, [TOO_FAST] * 4)
    with pytest.raises(NasError, match="none of the 4 architecture"):
        V._compare("raspi4", "arch", 1, archs, space, preds, nothing, None)


def test_item16_validate_refuses_an_output_that_is_one_of_its_inputs(tmp_path):
    """Checked before any measuring: the per-architecture CSV may not replace the architectures it reads, nor
    the table it validates."""
    csv = tmp_path / "in.csv"
    csv.write_text("arch\n" + "\n".join(load_space("fbnet-c100").format(a)
                                        for a in load_space("fbnet-c100").sample_many(2, seed=0)) + "\n")
    before = csv.read_text()
    with pytest.raises(NasError, match=r"^argument 'output': .* is a file this call reads.*another file than archs="):
        V.validate("raspi4", "fbnet-c100", archs=str(csv), output=str(csv), progress=False)
    table = load_latency("raspi4").table.csv_path
    with pytest.raises(NasError, match=r"is a file this call reads.*another file than device="):
        V.validate("raspi4", "fbnet-c100", archs=str(csv), output=str(table), progress=False)
    assert csv.read_text() == before


def _not_measured(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("measured before refusing")

    monkeypatch.setattr(V, "measure_networks", fail)


def test_item2_calibrating_a_table_of_another_host_is_refused_before_measuring(tmp_path, monkeypatch, capsys):
    """Issue 28.2: calibrating --device raspi4 on a laptop stored this host's fit in the shipped raspi4 table."""
    from helpers_latency import copy_table
    from nas.latency.table import SHIPPED_DIR

    _not_measured(monkeypatch)
    shipped = (SHIPPED_DIR / "raspi4.meta.yaml").read_text()
    for device, space, words in (("raspi4", "fbnet-c100", "'raspi4' is a shipped table"),
                                 ("x86-2vcpu", SPACE, "'x86-2vcpu' is a shipped table")):
        with pytest.raises(NasError, match=words) as exc:
            V.validate(device, space, n=4, calibrate=True, progress=False)
        assert exc.value.argument == "calibrate" and "--measure-here 20" in exc.value.fix
    assert (SHIPPED_DIR / "raspi4.meta.yaml").read_text() == shipped
    for device, space, words in (("raspi4", "fbnet-c100", "describes another device"),
                                 ("x86-2vcpu", SPACE, "records no host fingerprint")):  # copies: not shipped
        (tmp_path / device).mkdir()
        path = copy_table(tmp_path / device, device)
        with pytest.raises(NasError, match=f"table '{device}' {words}"):
            V.validate(str(path), space, n=4, calibrate=True, progress=False)
    meta = yaml.safe_load(path.with_name("t.meta.yaml").read_text())
    meta["host_fingerprint"] = {**V.fingerprint(1), "isa": ["avx2"]}
    path.with_name("t.meta.yaml").write_text(yaml.safe_dump(meta))
    rc, _, err = run_cli(capsys, "lut", "validate", "--device", path, "--space", SPACE, "--n", 4, "--calibrate")
    assert rc == 2 and err.startswith("nas: error: --calibrate: table 'x86-2vcpu' was profiled on another host (ISA")
    assert "calibration" not in yaml.safe_load(path.with_name("t.meta.yaml").read_text())


@pytest.mark.slow
def test_item2_a_calibration_of_this_hosts_table_records_the_host_and_keeps_other_writers_rows(
        profiled, tmp_path, monkeypatch):
    path, csv, _ = profiled
    table = _copy(path, tmp_path)
    ref = read_table(table).meta["reference_ms"]
    _fake_measurements(monkeypatch, ref)
    real_compare = V._compare

    def compare_then_another_writer(*a, **k):  # a profile run saves a row while this one measures
        t = read_table(table)
        key, entry = next(iter(t.entries.items()))
        t.entries = {(0, key[1][:-4] + (8, 8, 4, 8)): entry, **t.entries}
        t.write(table)
        return real_compare(*a, **k)

    monkeypatch.setattr(V, "_compare", compare_then_another_writer)
    V.validate(str(table), SPACE, dtype="fp32", archs=str(csv), calibrate=True, progress=False)
    after = read_table(table)
    assert after.meta["calibration"]["fp32"]["host_fingerprint"] == V.fingerprint(1)
    assert any(sig[-4:] == (8, 8, 4, 8) for _, sig in after.entries)  # the other writer's row survived
