"""End-to-end calibration of a table sum (nas.latency.calibration): the fit, the form the one-SE rule keeps,
its leave-one-out predictions, and a stored calibration used by predict."""
from __future__ import annotations

import random

import numpy as np
import pytest
import yaml

from nas.errors import NasError
from nas.latency import Calibration
from nas.latency.load import load as load_latency
from nas.latency.metrics import loo_predictions
from nas.layers import plan
from nas.space import load_space
from helpers_latency import ROW0, copy_table


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


def test_loo_predict_is_the_shared_leave_one_out():
    rng = random.Random(2)
    raw, n = [rng.uniform(1, 5) for _ in range(9)], [rng.randint(15, 25) for _ in range(9)]
    meas = [0.2 + 1.1 * r + 0.01 * k + rng.gauss(0, 0.05) for r, k in zip(raw, n)]
    x = np.column_stack([np.ones(9), raw, n])

    def relative_lstsq(F, m):  # least squares on relative error, as the calibration fits
        return np.linalg.lstsq(F / m[:, None], np.ones_like(m), rcond=None)[0]

    for form, cols in Calibration.FORMS.items():
        want = loo_predictions(relative_lstsq, x[:, cols], np.asarray(meas))
        assert np.allclose(Calibration.loo_predict(raw, n, meas, form), want)


def test_too_few_measurements_name_the_api_argument():
    with pytest.raises(NasError, match="at least 2 positive measurements, got 1") as exc:
        Calibration.fit([1.0], [10], [1.2], dtype="fp32")
    assert exc.value.argument == "measured_ms" and "--" not in str(exc.value)


def test_stored_calibration_is_used_by_predict(tmp_path, capsys):
    path = copy_table(tmp_path)
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


@pytest.mark.parametrize("key, value, message", [
    ("offset_ms", float("nan"), "offset_ms is nan, not a finite number"),
    ("per_layer_ms", float("inf"), "per_layer_ms is inf, not a finite number"),
    ("scale", 0.0, "scale is 0.0: a calibration scales the table sum by a positive factor"),
    ("scale", -1.5, "scale is -1.5"),
    ("scale", "x", "calibration entry is malformed"),
])
def test_item2_calibration_values_are_checked_on_read(tmp_path, key, value, message):
    """Issue 28.2: `offset_ms: nan` (or a non-positive scale) in a table's metadata was accepted and priced."""
    path = copy_table(tmp_path)
    meta = yaml.safe_load((tmp_path / "t.meta.yaml").read_text())
    cal = Calibration(0.5, 2.0, 0.1, 10, "arch").to_dict()
    meta["calibration"] = {"arch": {**cal, key: value}}
    (tmp_path / "t.meta.yaml").write_text(yaml.safe_dump(meta))
    with pytest.raises(NasError, match=message) as exc:
        load_latency(str(path))
    assert str(tmp_path / "t.meta.yaml") in exc.value.where and "calibrate=True" in exc.value.fix
    load_latency(str(path), calibrated=False)  # the table itself still reads


def test_item2_a_calibrated_prediction_at_or_below_zero_is_an_error_naming_table_and_architecture(tmp_path):
    """Issue 28.2: an offset of -50 ms gave -22.9 ms, which passed a 30 ms budget."""
    path = copy_table(tmp_path)
    meta = yaml.safe_load((tmp_path / "t.meta.yaml").read_text())
    meta["calibration"] = {"arch": Calibration(-50.0, 1.0, 0.0, 10, "arch").to_dict()}
    (tmp_path / "t.meta.yaml").write_text(yaml.safe_dump(meta))
    s = load_space("fbnet-c100")
    arch = s.parse(ROW0[0])
    with pytest.raises(NasError, match=r"latency model 'raspi4' predicts latency -19.7\d* ms for ") as exc:
        load_latency(str(path)).predict(arch, s)
    assert s.format(arch) in exc.value.problem and "calibrated=False" in exc.value.fix
    assert exc.value.where == str(tmp_path / "t.meta.yaml")
    assert load_latency(str(path), calibrated=False).predict(arch, s).latency_ms == pytest.approx(ROW0[1])
