"""The canonical text form and native encodings round-trip; bad strings get precise errors."""
import random
import re

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


def test_remembered_block_texts_still_name_each_place():
    """Block texts are remembered between parses; a bad one is not, so each error names its own place."""
    space = load_space("mobilenet-in1k")
    good = _mbv2_text()
    assert space.parse(good) == space.parse(good)
    for stage, width in ((1, "c24:"), (2, "c32:")):
        with pytest.raises(NasError, match=rf"stage {stage} block 0.*outside the space"):
            space.parse(good.replace(f"{width}ir_k3_e6", f"{width}ir_k9_e6", 1))


# --- APQ's JSON spec (native form of the apq space) -------------------------------------------------------
def _apq_spec(**over):
    spec = {"wid": None, "d": [2, 3, 4, 2, 3, 1], "ks": [3] * 21, "e": [4] * 21, "pw_w_bits_setting": [8] * 21,
            "pw_a_bits_setting": [8] * 21, "dw_w_bits_setting": [6] * 21, "dw_a_bits_setting": [4] * 21}
    spec.update(over)
    return spec


def test_apq_spec_round_trips_and_reads_per_role_bits():
    import json

    space = load_space("apq")
    arch = space.parse(json.dumps(_apq_spec(e=[4.333333] * 21)))  # APQ's rounding: mid = make_divisible(e * cin, 8)
    assert [st.depth for st in arch.stages] == [1, 2, 3, 4, 2, 3, 1]
    block = arch.stages[2].blocks[1]  # stage 2 (40 channels), second layer: cin 40 -> mid 176
    assert (block.wbits, block.abits, block.dw_wbits, block.dw_abits) == (8, 8, 6, 4)
    assert int(round(40 * block.expand)) == 176
    assert space.parse(space.to_native(arch)) == arch
    assert space.parse(space.format(arch)) == arch
    assert "_dw6_da4" in space.format(arch)


@pytest.mark.parametrize("over, message", [
    ({"ks": [7] * 21}, "ks[0] = 7 with dw_a_bits_setting[0] = 4"),
    ({"d": [5, 3, 4, 2, 3, 1]}, None),  # APQ reads d = 5 as 'all four slots'
    ({"d": [1, 3, 4, 2, 3, 1]}, "d[0] = 1"),
    ({"e": [3] * 21}, "e = 3 gives"),
    ({"pw_w_bits_setting": [5] * 21}, "pw_w_bits_setting[0] = 5"),
    ({"ks": [3] * 20}, "'ks' must be a list of 21"),
])
def test_apq_spec_errors_name_the_key(over, message):
    import json

    space = load_space("apq")
    if message is None:
        assert space.parse(json.dumps(_apq_spec(**over))).stages[1].depth == 4
        return
    with pytest.raises(NasError, match=re.escape(message)):
        space.parse(json.dumps(_apq_spec(**over)))
