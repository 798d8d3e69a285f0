"""The layer plan and analytic counts, exact against published figures and against the built modules."""
import pandas as pd
import pytest
import torch

from nas import list_spaces, load_space
from nas.layers import count, plan
from nas.nn.build import build_model

from conftest import TEST_DATA

MBV2 = "/".join([
    "ir_k3_se0_relu6_w32_a32",
    "c24:" + "-".join(["ir_k3_e6_se0_relu6_w32_a32"] * 2),
    "c32:" + "-".join(["ir_k3_e6_se0_relu6_w32_a32"] * 3),
    "c64:" + "-".join(["ir_k3_e6_se0_relu6_w32_a32"] * 4),
    "c96:" + "-".join(["ir_k3_e6_se0_relu6_w32_a32"] * 3),
    "c160:" + "-".join(["ir_k3_e6_se0_relu6_w32_a32"] * 3),
    "c320:ir_k3_e6_se0_relu6_w32_a32",
])
# MobileNetV3-Large body in mobilenet-in1k (expansions 2.5 and 2.3 of stage 3 rounded to 3; stem/head are
# the space's fixed MobileNetV2 ones: 32-ch ReLU6 stem, 1x1 conv to 1280, linear)
MBV3_LARGE = "/".join([
    "ir_k3_se0_relu_w32_a32",
    "c24:ir_k3_e4_se0_relu_w32_a32-ir_k3_e3_se0_relu_w32_a32",
    "c40:" + "-".join(["ir_k5_e3_se1_relu_w32_a32"] * 3),
    "c80:ir_k3_e6_se0_hswish_w32_a32-" + "-".join(["ir_k3_e3_se0_hswish_w32_a32"] * 3),
    "c112:" + "-".join(["ir_k3_e6_se1_hswish_w32_a32"] * 2),
    "c160:" + "-".join(["ir_k5_e6_se1_hswish_w32_a32"] * 2),
    "c160:ir_k5_e6_se1_hswish_w32_a32",
])


def test_nas_bench_macro_params_and_flops_are_exact():
    space = load_space("nas-bench-macro")
    df = pd.read_csv(TEST_DATA / "nas_bench_macro_dev.csv", dtype={"arch": str})
    assert len(df) == 400
    for row in df.itertuples():
        cost = count(space.parse(row.arch), space)
        assert (cost.params, cost.macs) == (row.params, row.flops), row.arch


def test_mobilenet_v2_matches_torchvision_figures():
    space = load_space("mobilenet-in1k")
    cost = count(space.parse(MBV2), space)
    assert cost.params == 3_504_872
    assert round(cost.macs / 1e6, 1) == 300.8


def test_mobilenet_v3_large_is_expressible():
    space = load_space("mobilenet-in1k")
    arch = space.parse(MBV3_LARGE)
    cost = count(arch, space)
    assert (cost.params, cost.macs) == (4_331_984, 233_341_216)


@pytest.mark.parametrize("name", list_spaces())
def test_analytic_params_equal_module_params(name):
    space = load_space(name)
    for arch in space.sample_many(3, seed=1):
        model = build_model(arch, space)
        assert sum(p.numel() for p in model.parameters()) == count(arch, space).params


def test_macs_match_a_forward_hook_count():
    """Count conv/linear MACs from real output shapes; must equal the analytic figure."""
    space = load_space("mobilenet-c10")
    arch = space.sample_many(1, seed=3)[0]
    model = build_model(arch, space)
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, torch.nn.Conv2d):
            total += out.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
        else:
            total += mod.in_features * mod.out_features

    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    assert total == count(arch, space).macs


def test_size_counts_weights_at_their_bit_width():
    space = load_space("mobilenet-c10")
    float_arch = space.parse(space.format(space.sample_many(1, seed=4)[0]).replace("_w8_", "_w32_").replace("_w4_", "_w32_"))
    four_bit = space.parse(space.format(float_arch).replace("_w32_", "_w4_"))
    f, q = count(float_arch, space), count(four_bit, space)
    assert f.params == q.params
    block_weights = sum(l.weight_params() for l in plan(float_arch, space) if l.op == "ir")
    assert f.size_bytes - q.size_bytes == pytest.approx(block_weights * (32 - 4) / 8)



def test_item15_network_key_is_a_compact_digest_of_what_the_network_computes():
    """A search keeps one network key per network it screened, scored or took; the key was the signatures
    themselves (~4 KB for mobilenet-c10). Now 16 bytes, equal exactly when the computing layers are."""
    from nas.layers import network_key, plan
    from nas.space import load_space

    space = load_space("mobilenet-c10")
    archs = space.sample_many(50, seed=0)
    keys = [network_key(plan(a, space)) for a in archs]
    assert all(isinstance(k, bytes) and len(k) == 16 for k in keys)
    sigs = [tuple(s.signature for s in plan(a, space) if s.computes) for a in archs]
    assert len(set(keys)) == len(set(sigs)) and keys[0] == network_key(plan(space.parse(space.format(archs[0])), space))
    macro = load_space("nas-bench-macro")  # identities that keep the shape: encodings differ, networks do not
    groups: dict[tuple, set] = {}
    for a in macro.sample_many(1000, seed=1):
        sig = tuple(s.signature for s in plan(a, macro) if s.computes)
        groups.setdefault(sig, set()).add((macro.format(a), network_key(plan(a, macro))))
    assert any(len(g) > 1 for g in groups.values())  # some network is built by several encodings
    assert all(len({k for _, k in g}) == 1 for g in groups.values())
    assert len({k for g in groups.values() for _, k in g}) == len(groups)
