"""Prediction from a measured table (nas.latency.predict): sums and breakdowns against published figures,
energy where published, missing signatures and coverage."""
from __future__ import annotations

import pandas as pd
import pytest

from conftest import run_cli
from nas.errors import NasError
from nas.latency.load import load as load_latency
from nas.layers import plan
from nas.space import load_space
from helpers_latency import ROW0


def test_energy_only_where_published():
    s = load_space("fbnet-c100")
    arch = s.sample_many(1, seed=3)[0]
    for dev in ("edgegpu", "eyeriss", "fpga"):
        assert load_latency(dev).predict(arch, s).energy_mJ > 0
    for dev in ("raspi4", "pixel3"):
        assert load_latency(dev).predict(arch, s).energy_mJ is None


def test_raspi4_shipped_sum_and_breakdown():
    s = load_space("fbnet-c100")
    pred = load_latency("raspi4").predict(s.parse(ROW0[0]), s)
    assert pred.latency_ms == pytest.approx(ROW0[1], rel=1e-9)
    assert len(pred.rows) == len(plan(s.parse(ROW0[0]), s)) == 26
    assert sum(r.ms for r in pred.rows) == pytest.approx(pred.latency_ms)
    assert not pred.estimated and not any(r.estimated for r in pred.rows)


@pytest.mark.slow
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


def test_missing_signature_lists_them_and_the_profile_command():
    s = load_space("mobilenet-c10")
    arch = s.sample_many(1, seed=0)[0]
    with pytest.raises(NasError) as exc:
        load_latency("raspi4").predict(arch, s)
    msg = str(exc.value)
    assert "no entry for" in msg and plan(arch, s)[0].key in msg
    assert "nas lut profile --space mobilenet-c10 --device-name raspi4" in msg and "\n" not in msg


def test_missing_signature_fix_is_in_api_terms_and_the_cli_names_its_flag(capsys):
    s = load_space("mobilenet-c10")
    arch = s.sample_many(1, seed=0)[0]
    with pytest.raises(NasError) as exc:
        load_latency("raspi4").predict(arch, s)
    assert "pass allow_estimate=True to fill them" in exc.value.fix and "--allow-estimate" not in exc.value.fix
    rc, _, err = run_cli(capsys, "lut", "predict", "--device", "raspi4", "--space", "mobilenet-c10", s.format(arch))
    assert rc == 2 and "pass --allow-estimate to fill them from the documented estimator" in err
    assert "`nas lut profile --space mobilenet-c10 --device-name raspi4 --archs ARCHS.csv`" in err


def test_check_covers_names_missing_space():
    with pytest.raises(NasError, match="no entry for .* space ofa-mbv3"):
        load_latency("raspi4").check_covers(load_space("ofa-mbv3"))


def test_an_identity_skip_without_a_row_costs_nothing_and_needs_no_profile():
    from nas.latency import load
    from nas.space import load_space

    space = load_space("nas-bench-macro")
    model = load("x86-2vcpu", dtype="int8")  # no identity rows: the profiler never times a layer that runs nothing
    pred = model.predict(space.parse("01202110"), space)
    identity = [r for r in pred.rows if r.key.startswith("skip-") and "-s1-" in r.key]  # stride 1, same width
    assert identity and all(r.ms == 0.0 for r in identity)
    model.check_covers(space)
