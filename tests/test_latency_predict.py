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


def test_item3_a_renamed_copy_is_priced_as_its_original(tmp_path):
    """Item 3: precision boundaries and fixed groups were priced for the space names the table lists, so a
    renamed copy of mobilenet-c10 lost its boundary rows (1.2-2 % lower, no note) and a copy of fbnet-c100 its
    stem/head constant. They are keyed by the space's structure (``SearchSpace.structure_hash``); a file that keeps
    a listed name with another structure does not get that space's rows."""
    from nas.paths import SHIPPED_SPACES_DIR

    def copy(name: str, new_name: str, *replace_pairs) -> str:
        text = (SHIPPED_SPACES_DIR / f"{name}.yaml").read_text().replace(f"name: {name}", f"name: {new_name}", 1)
        for old, new in replace_pairs:
            assert old in text
            text = text.replace(old, new, 1)
        (tmp_path / f"{new_name}-{len(replace_pairs)}.yaml").write_text(text)
        return str(tmp_path / f"{new_name}-{len(replace_pairs)}.yaml")

    mb, mb_copy = load_space("mobilenet-c10"), load_space(copy("mobilenet-c10", "my-mbv2"))
    assert mb_copy.structure_hash == mb.structure_hash and mb_copy.name != mb.name
    x86 = load_latency("x86-2vcpu")
    for arch in mb.sample_many(5, seed=1):
        same = mb_copy.parse(mb.format(arch))
        assert x86.predict(same, mb_copy).latency_ms == x86.predict(arch, mb).latency_ms
    fb, fb_copy = load_space("fbnet-c100"), load_space(copy("fbnet-c100", "my-fbnet"))
    gold = load_latency("gold6226")
    arch = fb.sample_many(1, seed=0)[0]
    assert gold.predict(fb_copy.parse(fb.format(arch)), fb_copy).to_dict() == gold.predict(arch, fb).to_dict()
    gold.check_covers(fb_copy)
    # a user's file that keeps the shipped name with a 10-class head is another structure: no 100-class constant
    ten = load_space(copy("fbnet-c100", "fbnet-c100", ("num_classes: 100", "num_classes: 10")))
    assert ten.name == "fbnet-c100" and ten.structure_hash != fb.structure_hash
    with pytest.raises(NasError, match="no entry for"):
        gold.predict(ten.parse(fb.format(arch)), ten)
    assert fb.with_num_classes(10).structure_hash == fb.structure_hash  # a user's data: priced as measured
