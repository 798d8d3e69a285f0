"""Latency tables: schema, shipped tables, prediction, coverage, bad input, calibration (no torch needed)."""
from __future__ import annotations

import math
import random
import shutil

import pandas as pd
import pytest
import yaml

from conftest import run_cli
from nas.errors import NasError
from nas.latency import Calibration, read_table
from nas.latency.load import load as load_latency
from nas.latency.signatures import arch_layers, space_signatures
from nas.latency.table import SHIPPED_DIR, list_devices
from nas.layers import make_divisible, plan
from nas.space import list_spaces, load_space

SHIPPED = sorted(p.name[: -len(".meta.yaml")] for p in SHIPPED_DIR.glob("*.meta.yaml"))
EXPECTED = {"edgegpu": ["fbnet-c100", "fbnet-in1k"], "raspi4": ["fbnet-c100", "fbnet-in1k"],
            "pixel3": ["fbnet-c100", "fbnet-in1k"], "eyeriss": ["fbnet-c100", "fbnet-in1k"],
            "fpga": ["fbnet-c100", "fbnet-in1k"], "note10": ["ofa-mbv3"], "proxyless-mobile": ["proxylessnas-mobile"]}


# --------------------------------------------------------------------------------------------------------
# shipped tables
# --------------------------------------------------------------------------------------------------------
def test_every_expected_device_is_shipped():
    assert set(EXPECTED) <= set(SHIPPED)


@pytest.mark.parametrize("device", SHIPPED)
def test_shipped_table_loads_and_covers_its_spaces(device):
    table = read_table(device)
    assert table.meta["schema_version"] == 1 and table.meta["device"] == device
    for key in ("source", "commit", "license"):
        assert table.meta["provenance"][key]
    assert all(e.latency_ms >= 0 and math.isfinite(e.latency_ms) for e in table.entries.values())
    # a profiled table covers its spaces at the precision(s) it was measured at
    dtypes = [d for d in str(table.meta.get("dtype", "")).split(",") if d in ("fp32", "int8")] or [None]
    for dtype in dtypes:
        model = load_latency(device, dtype=dtype)
        for space in table.meta["spaces"]:
            model.check_covers(load_space(space))
    assert sorted(table.meta["spaces"]) == EXPECTED.get(device, sorted(table.meta["spaces"]))
    # written text is what is on disk: the content hash identifies the file
    assert table.to_csv_text() == table.csv_path.read_text()


def test_energy_only_where_published():
    s = load_space("fbnet-c100")
    arch = s.sample_many(1, seed=3)[0]
    for dev in ("edgegpu", "eyeriss", "fpga"):
        assert load_latency(dev).predict(arch, s).energy_mJ > 0
    for dev in ("raspi4", "pixel3"):
        assert load_latency(dev).predict(arch, s).energy_mJ is None


# first row of ../shared/data/dev/fbnet_measured_latency_dev.csv (raspi4_ms), so this runs without shared data
ROW0 = ("k5_e6|skip|k3_e1_g2|skip|k5_e1|skip|skip|skip|k5_e6|k5_e1|k3_e1_g2|k5_e1|k5_e6|k3_e6|k3_e3|k5_e6|k3_e6|"
        "k3_e3|k5_e1|k3_e3|k5_e1|k5_e1_g2", 30.252860404143576)


def test_raspi4_shipped_sum_and_breakdown():
    s = load_space("fbnet-c100")
    pred = load_latency("raspi4").predict(s.parse(ROW0[0]), s)
    assert pred.latency_ms == pytest.approx(ROW0[1], rel=1e-9)
    assert len(pred.rows) == len(plan(s.parse(ROW0[0]), s)) == 26
    assert sum(r.ms for r in pred.rows) == pytest.approx(pred.latency_ms)
    assert not pred.estimated and not any(r.estimated for r in pred.rows)


def test_raspi4_reproduces_dev_latencies_through_cli(shared_data, tmp_path, capsys):
    dev = pd.read_csv(shared_data / "dev" / "fbnet_measured_latency_dev.csv")
    pd.DataFrame({"arch": dev["arch_str"]}).to_csv(tmp_path / "in.csv", index=False)
    rc, out, err = run_cli(capsys, "lut", "predict", "--device", "raspi4", "--space", "fbnet-c100",
                           "--archs", tmp_path / "in.csv", "-o", tmp_path / "out.csv")
    assert rc == 0, err
    got = pd.read_csv(tmp_path / "out.csv")
    assert list(got.columns) == ["arch", "latency_ms"] and len(got) == 5000
    rel = ((got["latency_ms"] - dev["raspi4_ms"]).abs() / dev["raspi4_ms"]).max()
    assert rel < 1e-6


# --- OFA / ProxylessNAS: our sum vs their estimators' algorithm on their raw tables -----------------------
def _ofa_reference(arch, lut: dict) -> float:
    """OFA's MBv3LatencyTable.predict_network_latency_given_config, transcribed: keys built OFA's way."""
    r = arch.resolution
    q = lambda k: lut[r][k]  # noqa: E731  (OFA keeps one table per resolution)
    fs = (r + 1) // 2
    lat = q(f"Conv-input:{r}x{r}x3-output:{fs}x{fs}x24")
    lat += q(f"expanded_conv-input:{fs}x{fs}x24-output:{fs}x{fs}x24-expand:24-kernel:3-stride:1-idskip:1-se:0-hs:0")
    cin = 24
    for st, stride, se, hs in zip(arch.stages[1:], [2, 2, 2, 1, 2], [0, 1, 0, 1, 1], [0, 0, 1, 1, 1]):
        for j, b in enumerate(st.blocks):
            s = stride if j == 0 else 1
            out = (fs - 1) // s + 1
            mid = make_divisible(round(cin * b.expand), 8)
            idskip = int(s == 1 and cin == st.width)
            lat += q(f"expanded_conv-input:{fs}x{fs}x{cin}-output:{out}x{out}x{st.width}-expand:{mid}-kernel:"
                     f"{b.kernel}-stride:{s}-idskip:{idskip}-se:{se}-hs:{hs}")
            fs, cin = out, st.width
    lat += q(f"Conv_1-input:{fs}x{fs}x192-output:{fs}x{fs}x1152")
    lat += q(f"AvgPool2D-input:{fs}x{fs}x1152-output:1x1x1152")
    lat += q("Conv_2-input:1x1x1152-output:1x1x1536")
    lat += q("Logits-input:1x1x1536-output:1000")
    return lat


def test_note10_sum_equals_ofa_estimator(shared_data):
    raw = pd.read_csv(shared_data / "edge_luts" / "ofa_note10_mbv3_op_lut.csv")
    lut: dict = {}
    for r, k, v in zip(raw["resolution"], raw["op_key"], raw["mean_ms"]):
        lut.setdefault(int(r), {})[k] = v
    s = load_space("ofa-mbv3")
    model = load_latency("note10")
    archs = s.sample_many(300, seed=7)
    for res in s.resolutions:  # every resolution at least once
        archs.append(s.parse("r%d/" % res + s.format(archs[0]).split("/", 1)[1]))
    for arch in archs:
        assert model.predict(arch, s).latency_ms == pytest.approx(_ofa_reference(arch, lut), rel=1e-12)


def test_proxyless_sum_equals_ofa_proxyless_estimator(shared_data):
    raw = pd.read_csv(shared_data / "edge_luts" / "proxylessnas_mobile_trim_op_lut.csv")
    lut = dict(zip(raw["op_key"], raw["mean_ms"]))
    s = load_space("proxylessnas-mobile")
    model = load_latency("proxyless-mobile")
    for arch in s.sample_many(200, seed=5):
        fs, cin = 112, 32
        ref = lut["Conv-input:224x224x3-output:112x112x32"]
        for st, stride in zip(arch.stages, [1, 2, 2, 2, 1, 2, 1]):
            for j, b in enumerate(st.blocks):
                s_ = stride if j == 0 else 1
                if b.op == "skip":  # zero op: block absent (ProxylessNASLatencyTable skips it)
                    continue
                out = (fs - 1) // s_ + 1
                ref += lut[f"expanded_conv-input:{fs}x{fs}x{cin}-output:{out}x{out}x{st.width}-expand:{b.expand}"
                           f"-kernel:{b.kernel}-stride:{s_}-idskip:{int(s_ == 1 and cin == st.width)}"]
                fs, cin = out, st.width
        ref += lut[f"Conv_1-input:{fs}x{fs}x320-output:{fs}x{fs}x1280"] + lut[f"Logits-input:{fs}x{fs}x1280-output:1000"]
        assert model.predict(arch, s).latency_ms == pytest.approx(ref, rel=1e-12)


def test_shipped_tables_match_regenerated(shared_data, tmp_path):
    from nas.latency.importers import main

    assert main(["--data", str(shared_data), "--out", str(tmp_path)]) == 0
    for dev in EXPECTED:
        assert (tmp_path / f"{dev}.csv").read_text() == (SHIPPED_DIR / f"{dev}.csv").read_text(), dev


# --------------------------------------------------------------------------------------------------------
# signatures, coverage, estimates
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list_spaces())
def test_space_signatures_contain_every_planned_layer(name):
    s = load_space(name)
    sigs = space_signatures(s)
    for arch in s.sample_many(40, seed=11):
        for spec in plan(arch, s):
            assert spec.signature in sigs, (name, spec.key)


def test_missing_signature_lists_them_and_the_profile_command():
    s = load_space("mobilenet-c10")
    arch = s.sample_many(1, seed=0)[0]
    with pytest.raises(NasError) as exc:
        load_latency("raspi4").predict(arch, s)
    msg = str(exc.value)
    assert "no entry for" in msg and plan(arch, s)[0].key in msg
    assert "nas lut profile --space mobilenet-c10 --device-name raspi4" in msg and "\n" not in msg


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


def test_check_covers_names_missing_space():
    with pytest.raises(NasError, match="no entry for .* space ofa-mbv3"):
        load_latency("raspi4").check_covers(load_space("ofa-mbv3"))


# --------------------------------------------------------------------------------------------------------
# bad input: one precise line, exit 2
# --------------------------------------------------------------------------------------------------------
def _copy_table(tmp_path, device="raspi4"):
    shutil.copy(SHIPPED_DIR / f"{device}.csv", tmp_path / "t.csv")
    shutil.copy(SHIPPED_DIR / f"{device}.meta.yaml", tmp_path / "t.meta.yaml")
    return tmp_path / "t.csv"


def _edit_csv(path, fn):
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    fn(df).to_csv(path, index=False)


@pytest.mark.parametrize("case, expect", [
    ("nan", "latency_ms: nan is not a finite number"),
    ("negative", "latency_ms: negative value -1.5"),
    ("missing_column", "missing column(s) spread_ms"),
    ("schema", "schema_version 99 is not supported"),
    ("duplicate", "duplicate signature conv-i32x32x3-o16-k3-s1-relu-w32a32"),
    ("no_meta", "metadata file missing"),
])
def test_bad_tables_fail_with_one_precise_line(tmp_path, capsys, case, expect):
    path = _copy_table(tmp_path)
    if case == "nan":
        _edit_csv(path, lambda df: df.assign(latency_ms=["nan"] + list(df["latency_ms"][1:])))
    elif case == "negative":
        _edit_csv(path, lambda df: df.assign(latency_ms=["-1.5"] + list(df["latency_ms"][1:])))
    elif case == "missing_column":
        _edit_csv(path, lambda df: df.drop(columns=["spread_ms"]))
    elif case == "schema":
        meta = yaml.safe_load((tmp_path / "t.meta.yaml").read_text())
        meta["schema_version"] = 99
        (tmp_path / "t.meta.yaml").write_text(yaml.safe_dump(meta))
    elif case == "duplicate":
        text = path.read_text().splitlines()
        path.write_text("\n".join(text + [text[1]]) + "\n")
    elif case == "no_meta":
        (tmp_path / "t.meta.yaml").unlink()
    rc, out, err = run_cli(capsys, "lut", "predict", "--table", path, "--space", "fbnet-c100",
                           "k3_e1|" * 21 + "k3_e1")
    assert rc == 2 and expect in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unknown_device_and_uncovered_space(capsys):
    rc, _, err = run_cli(capsys, "lut", "predict", "--device", "raspi5", "--space", "fbnet-c100", "k3_e1|" * 22)
    assert rc == 2 and "unknown device 'raspi5'" in err and "raspi4" in err and err.count("\n") == 1
    rc, _, err = run_cli(capsys, "lut", "show", "note10", "--space", "fbnet-c100")
    assert rc == 0
    arch = load_space("ofa-mbv3").sample_many(1, seed=0)[0]
    rc, _, err = run_cli(capsys, "lut", "predict", "--device", "raspi4", "--space", "ofa-mbv3",
                         load_space("ofa-mbv3").format(arch))
    assert rc == 2 and "has no entry for" in err and err.count("\n") == 1


def test_cli_list_and_show(capsys):
    rc, out, _ = run_cli(capsys, "lut", "list")
    assert rc == 0 and all(d in out for d in EXPECTED)
    rc, out, _ = run_cli(capsys, "lut", "show", "proxyless-mobile", "--space", "proxylessnas-mobile")
    assert rc == 0 and "coverage of proxylessnas-mobile (arch): complete" in out and "a7c9bcd" in out


# --------------------------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------------------------
def test_calibration_fit_recovers_coefficients():
    rng = random.Random(0)
    raw = [rng.uniform(1, 20) for _ in range(30)]
    n = [rng.randint(10, 30) for _ in range(30)]
    meas = [0.3 + 1.2 * r - 0.01 * k for r, k in zip(raw, n)]
    cal = Calibration.fit(raw, n, meas, dtype="fp32")
    assert (cal.offset_ms, cal.scale, cal.per_layer_ms) == pytest.approx((0.3, 1.2, -0.01), abs=1e-9)
    assert cal.form == "offset+scale+layers" and cal.metrics["loo_mape_pct"][cal.form] < 1e-6
    few = Calibration.fit(raw[:3], n[:3], [2 * r for r in raw[:3]], dtype="fp32")
    assert (few.offset_ms, few.scale, few.per_layer_ms) == pytest.approx((0, 2, 0)) and few.form == "scale"


def test_calibration_keeps_the_form_that_predicts_left_out_architectures():
    """Proportional data with noise: the extra terms fit noise, so leave-one-out picks a smaller form."""
    rng = random.Random(1)
    raw = [rng.uniform(1, 5) for _ in range(12)]
    n = [rng.randint(15, 25) for _ in range(12)]
    meas = [1.15 * r * (1 + rng.gauss(0, 0.03)) for r in raw]
    cal = Calibration.fit(raw, n, meas, dtype="int8")
    loo = cal.metrics["loo_mape_pct"]
    best = min(loo, key=loo.get)
    assert set(loo) == set(Calibration.FORMS) and loo["offset+scale+layers"] > loo["scale"]
    # one-SE rule: the first (fewest terms) form within one standard error of the best
    assert cal.form == next(f for f in Calibration.FORMS if loo[f] <= loo[best] + cal.metrics["loo_se_pct"][best])
    assert cal.form == "scale"
    pred = Calibration.loo_predict(raw, n, meas, "scale")  # item 0 predicted by a fit on items 1..11
    scale = sum(m * r / m ** 2 for r, m in zip(raw[1:], meas[1:])) / sum(r * r / m ** 2 for r, m in zip(raw[1:], meas[1:]))
    assert pred[0] == pytest.approx(scale * raw[0])


def test_stored_calibration_is_used_by_predict(tmp_path, capsys):
    path = _copy_table(tmp_path)
    meta = yaml.safe_load((tmp_path / "t.meta.yaml").read_text())
    cal = Calibration(0.5, 2.0, 0.1, 20, "arch", "2026-01-01")
    meta["calibration"] = {"arch": cal.to_dict()}
    (tmp_path / "t.meta.yaml").write_text(yaml.safe_dump(meta))
    s = load_space("fbnet-c100")
    arch = s.parse(ROW0[0])
    model = load_latency(str(path))
    pred = model.predict(arch, s)
    n_compute = sum(1 for l in plan(arch, s) if not (l.op == "skip" and not l.projects))
    assert pred.calibrated and pred.raw_ms == pytest.approx(ROW0[1])
    assert pred.latency_ms == pytest.approx(0.5 + 2 * ROW0[1] + 0.1 * n_compute)
    assert sum(r.ms for r in pred.rows) == pytest.approx(pred.latency_ms)
    assert model.identity["calibrated"] is True and model.identity["content_hash"]
    assert load_latency(str(path), calibrated=False).predict(arch, s).latency_ms == pytest.approx(ROW0[1])
    assert load_latency("raspi4").identity["calibrated"] is False


def test_dtype_rewrites_bits_of_signatures():
    s = load_space("mobilenet-c10")
    archs = s.sample_many(3, seed=2)
    for dtype, bits in (("fp32", (32, 32)), ("int8", (8, 8))):
        assert {sig[-2:] for sig in arch_layers(archs, s, dtype)} == {bits}
    assert len({sig[-2:] for sig in arch_layers(archs, s, None)}) > 1


def test_unknown_device_lists_available():
    with pytest.raises(NasError, match="use one of .*raspi4"):
        load_latency("nope")
    assert "raspi4" in list_devices()
