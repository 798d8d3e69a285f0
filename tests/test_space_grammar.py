"""The canonical text form and native encodings round-trip; bad strings get precise errors."""
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from nas import Architecture, NasError, list_spaces, load_space

SPACES = list_spaces()


def _mbv2_text(kernel="k3", width6=320):
    b = "ir_k3_e6_se0_relu6_w32_a32"
    return "/".join(["ir_k3_se0_relu6_w32_a32", "c24:" + "-".join([b] * 2), "c32:" + "-".join([b] * 3),
                     "c64:" + "-".join([b] * 4), "c96:" + "-".join([b] * 3), "c160:" + "-".join([b] * 3),
                     f"c{width6}:{b}"])


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

