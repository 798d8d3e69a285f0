"""The model builder - every op builds and runs, exports to ONNX matching PyTorch, deterministic under a seed."""
import numpy as np
import pytest
import torch

from nas import list_spaces, load_space
from nas.layers import plan
from nas.nn.build import build_layer, build_model
from nas.nn.onnx import export_onnx, ort_session, run_onnx


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

