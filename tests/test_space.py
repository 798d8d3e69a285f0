"""Search spaces: every shipped YAML loads, samples deterministically, round-trips, and rejects bad input."""
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from nas import Architecture, NasError, list_spaces, load_space
from nas.space import load_space_file

SPACES = list_spaces()


def test_all_expected_spaces_ship():
    assert set(SPACES) >= {"mobilenet-c10", "mobilenet-in1k", "fbnet-c100", "fbnet-in1k", "nas-bench-macro",
                           "ofa-mbv3", "proxylessnas-mobile"}


@pytest.mark.parametrize("name", SPACES)
def test_sampling_is_deterministic_under_a_seed(name):
    space = load_space(name)
    a = [space.format(x) for x in space.sample_many(20, seed=7)]
    b = [space.format(x) for x in space.sample_many(20, seed=7)]
    c = [space.format(x) for x in space.sample_many(20, seed=8)]
    assert a == b
    assert a != c


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=1000, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_text_and_json_round_trip(name, seed):
    space = load_space(name)
    arch = space.random(random.Random(seed))
    text = space.format(arch)
    assert space.parse(text) == arch
    assert space.format(space.parse(text)) == text
    js = arch.to_json()
    back = Architecture.from_json(js)
    assert back == arch and hash(back) == hash(arch)
    assert back.to_json() == js
    assert space.parse(js) == arch
    native = space.to_native(arch)
    if native is not None:
        assert space.parse(native) == arch


def test_space_sizes():
    assert load_space("nas-bench-macro").count() == 3 ** 8
    assert load_space("fbnet-c100").count() == 9 ** 22
    # OFA: 17 resolutions x 5 stages of sum_{d=2..4} 9^d sub-blocks
    assert load_space("ofa-mbv3").count() == 17 * (9 ** 2 + 9 ** 3 + 9 ** 4) ** 5


def test_native_encodings():
    macro = load_space("nas-bench-macro")
    arch = macro.parse("01202110")
    assert macro.format(arch) == "skip-ir_k3_e3/ir_k5_e6-skip-ir_k5_e6/ir_k3_e3-ir_k3_e3-skip"
    assert macro.to_native(arch) == "01202110"
    fb = load_space("fbnet-c100")
    ops = ["k3_e1", "skip", "k5_e6", "k3_e1_g2"] + ["k5_e3"] * 18
    arch = fb.parse("|".join(ops))
    assert arch.blocks[1].op == "skip" and arch.blocks[3].groups == 2 and arch.blocks[2].expand == 6
    assert fb.to_native(arch) == "|".join(ops)


@pytest.mark.parametrize("text, message", [
    ("ir_k3_se0_relu6_w32_a32/c24:ir_k9_e6_se0_relu6_w32_a32", "stage segment"),
    ("0120211", "layer"),
    ("01202119", "digits must be 0..2"),
])
def test_bad_architecture_strings(text, message):
    space = load_space("mobilenet-c10" if "ir" in text else "nas-bench-macro")
    with pytest.raises(NasError, match=message):
        space.parse(text)


def _mbv2_text(kernel="k3", width6=320):
    b = "ir_k3_e6_se0_relu6_w32_a32"
    return "/".join(["ir_k3_se0_relu6_w32_a32", "c24:" + "-".join([b] * 2), "c32:" + "-".join([b] * 3),
                     "c64:" + "-".join([b] * 4), "c96:" + "-".join([b] * 3), "c160:" + "-".join([b] * 3),
                     f"c{width6}:{b}"])


def test_typo_and_out_of_space_choices_name_the_place():
    space = load_space("mobilenet-in1k")
    good = _mbv2_text()
    assert space.parse(good)
    with pytest.raises(NasError, match=r"stage 1 block 0.*unknown token 'k3x'"):
        space.parse(good.replace("c24:ir_k3_e6", "c24:ir_k3x_e6", 1))
    with pytest.raises(NasError, match=r"stage 1 block 0.*outside the space"):
        space.parse(good.replace("c24:ir_k3_e6", "c24:ir_k9_e6", 1))
    with pytest.raises(NasError, match=r"stage 1.*width 28 is not allowed"):
        space.parse(good.replace("c24:", "c28:", 1))
    with pytest.raises(NasError, match=r"stage 1 block 0.*leaves kernel open"):
        space.parse(good.replace("c24:ir_k3_e6", "c24:ir_e6", 1))
    with pytest.raises(NasError, match=r"did you mean 'hswish'"):
        space.parse(good.replace("relu6_w32", "hswsh_w32", 1))
    with pytest.raises(NasError, match=r"belongs to space 'nas-bench-macro'"):
        space.validate(load_space("nas-bench-macro").parse("00000000"))


BASE_YAML = """
name: tiny
input: {resolution: 32}
num_classes: 10
block: {kernel: [3, 5], expand: [1, 6]}
stem: [{op: conv, kernel: 3, stride: 1, width: 16, act: relu}]
stages:
  - {width: [16, 24], depth: [1, 2], stride: 2}
head: [{op: conv, kernel: 1, width: 64, act: relu}, {op: pool}, {op: linear}]
"""


def _write(tmp_path, text):
    p = tmp_path / "tiny.yaml"
    p.write_text(text)
    return p


def test_user_yaml_space_loads_and_counts(tmp_path):
    space = load_space_file(_write(tmp_path, BASE_YAML))
    # 2 widths x (4 blocks + 4^2 blocks)
    assert space.count() == 2 * (4 + 16)
    arch = space.random(random.Random(0))
    assert load_space(str(tmp_path / "tiny.yaml")).parse(space.format(arch)) == arch


@pytest.mark.parametrize("change, message", [
    (("block: {kernel: [3, 5]", "block: {kernel: [3, 5"), "malformed YAML at line"),
    (("num_classes: 10", "num_classes: 10\nnum_clases: 10"), "unknown key 'num_clases'.*did you mean 'num_classes'"),
    (("kernel: [3, 5]", "kernel: []"), "block.kernel: empty choice list"),
    (("stride: 2}", "stride: 3}"), r"stages\[0\].stride: invalid value 3"),
    (("width: [16, 24]", "width: [16, -24]"), r"stages\[0\].width: invalid value -24"),
    (("kernel: [3, 5]", "kernel: [3, 4]"), r"block.kernel: invalid value 4"),
    (("block: {kernel: [3, 5], expand: [1, 6]}", "block: {kernel: 3, expand: 1, groups: 3}"), "groups=3 does not divide"),
    (("resolution: 32", "resolution: 1"), "smaller than the total stride"),
    (("{op: linear}", "{op: linear, width: 7}"), "num_classes is 10"),
])
def test_bad_yaml_names_file_key_and_fix(tmp_path, change, message):
    path = _write(tmp_path, BASE_YAML.replace(*change))
    with pytest.raises(NasError, match=message) as info:
        load_space_file(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_space_suggests():
    with pytest.raises(NasError, match="did you mean 'fbnet-c100'"):
        load_space("fbnet-c10")
