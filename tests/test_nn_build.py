"""The model builder - every op builds and runs, exports to ONNX matching PyTorch, deterministic under a seed."""
import numpy as np
import pytest
import torch

from nas import list_spaces, load_space
from nas.layers import plan
from nas.nn.build import build_layer, build_model
from nas.nn.onnx import export_onnx, ort_session, run_onnx


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


@pytest.mark.parametrize("name", ["fbnet-c100", "fbnet-in1k"])
def test_every_fbnet_op_of_every_layer_builds_and_runs(name):
    space = load_space(name)
    ops = list(space.presets)
    assert len(ops) == 9
    for op in ops:
        arch = space.parse("|".join([op] * 22))
        for spec in plan(arch, space)[1:23]:
            layer = build_layer(spec).eval()
            with torch.no_grad():
                y = layer(torch.randn(1, spec.cin, spec.h, spec.w))
            assert y.shape == (1, spec.cout, *spec.out_hw), (op, spec.name)


@pytest.mark.parametrize("name", list_spaces())
def test_onnx_export_matches_pytorch(name):
    space = load_space(name)
    arch = space.sample_many(1, seed=11)[0]
    model = build_model(arch, space)
    x = torch.randn(1, *model.input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort_session(export_onnx(model))
    got = run_onnx(session, x.numpy())
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_build_is_deterministic_under_seed():
    space = load_space("mobilenet-c10")
    arch = space.sample_many(1, seed=2)[0]
    a, b = build_model(arch, space, seed=5), build_model(arch, space, seed=5)
    c = build_model(arch, space, seed=6)
    wa, wb, wc = (next(m.parameters()).detach() for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)

