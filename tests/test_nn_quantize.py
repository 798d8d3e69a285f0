"""nas.nn.quantize: per-layer bit-widths -> the right integer initializers, fused int8 convs, outputs close to float."""
from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto

from nas.nn import quantize as Q
from nas.errors import NasError
from nas.layers import LayerSpec, plan
from nas.nn.build import build_layer, build_model
from nas.nn.onnx import export_onnx, ort_session, run_onnx
from nas.space import load_space

SPACE = "mobilenet-c10"
# one block of every bit-width pair the mobilenet-c10 space offers
ARCH = ("ir_k3_se0_relu6_w8_a8/c16:ir_k5_e3_se0_relu6_w4_a8/c32:ir_k3_e3_se0_relu_w8_a32-ir_k3_e3_se0_relu6_w4_a32"
        "/c64:ir_k3_e3_se0_relu6_w32_a8-ir_k3_e3_se0_relu6_w32_a32/c96:ir_k3_e3_se0_relu6_w8_a8-"
        "ir_k3_e3_se0_relu6_w8_a8/c160:ir_k3_e3_se0_relu6_w8_a8-ir_k3_e3_se0_relu6_w8_a8/c160:"
        "ir_k3_e1_se0_relu6_w8_a8")
WEIGHT_TYPE = {4: TensorProto.INT4, 8: TensorProto.INT8, 32: TensorProto.FLOAT}


def weight_types(path) -> dict[tuple[int, str], int]:
    """(layer index, node name) -> data type of the weight tensor each Conv/Gemm really stores."""
    m = onnx.load(str(path))
    inits = {i.name: i.data_type for i in m.graph.initializer}
    producer = {o: n for n in m.graph.node for o in n.output}
    out = {}
    for n in m.graph.node:
        if n.op_type not in ("Conv", "Gemm"):
            continue
        layer = int(re.search(r"layers\.(\d+)", n.name).group(1))
        w = n.input[1]
        if w in producer and producer[w].op_type == "DequantizeLinear":
            w = producer[w].input[0]
        out[(layer, n.name)] = inits[w]
    return out


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    d = tmp_path_factory.mktemp("q")
    space = load_space(SPACE)
    arch = space.parse(ARCH)
    model = build_model(arch, space, seed=0)
    export_onnx(model, d / "f.onnx")
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, *model.input_shape)).astype(np.float32) for _ in range(4)]
    summary = Q.quantize(d / "f.onnx", d / "q.onnx", plan(arch, space), calib)
    return model, plan(arch, space), d, summary, calib


def test_each_layer_stores_weights_at_its_bit_width(mixed):
    _, specs, d, summary, _ = mixed
    types = weight_types(d / "q.onnx")
    assert {i for i, _ in types} == {i for i, s in enumerate(specs) if s.weight_params()}
    for (i, name), dtype in types.items():
        assert dtype == WEIGHT_TYPE[specs[i].wbits], (specs[i].key, name)
    assert summary["layers"][2:6] == ["w4a8", "w8a32", "w4a32", "w32a8"]
    assert summary["weight_only_nodes"] > 0 and summary["activation_only_nodes"] > 0


def test_quantized_network_runs_close_to_float(mixed):
    model, _, d, _, calib = mixed
    x = calib[1]
    ref = model(torch.from_numpy(x)).detach().numpy()
    out = run_onnx(ort_session(d / "q.onnx"), x)
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() < 0.2 * np.abs(ref).max()
    assert np.abs(out - ref).max() > 1e-3 * np.abs(ref).max()  # it is really quantized


def test_int8_depthwise_block_alone_fuses_every_conv(tmp_path):
    """The exporter shares equal (zero) BN biases between convs; unshared, each conv fuses into QLinearConv."""
    spec = LayerSpec(name="b", op="ir", h=16, w=16, cin=48, cout=48, kernel=5, expand=1.0, mid=48, act="relu6",
                     residual=True, wbits=8, abits=8)
    torch.manual_seed(0)
    layer = build_layer(spec).eval()
    layer.input_shape = (48, 16, 16)
    export_onnx(layer, tmp_path / "f.onnx")
    shared = onnx.load(str(tmp_path / "f.onnx"))
    assert any(n.op_type == "Identity" for n in shared.graph.node)  # the exporter's deduplication is there
    calib = [np.random.default_rng(i).standard_normal((1, 48, 16, 16)).astype(np.float32) for i in range(2)]
    Q.quantize(tmp_path / "f.onnx", tmp_path / "q.onnx", (8, 8), calib)
    ops = Q.fused_ops(tmp_path / "q.onnx")
    assert ops.get("QLinearConv") == 2 and "Conv" not in ops and "FusedConv" not in ops


def test_whole_int8_network_fuses_all_convs(mixed):
    _, specs, d, _, calib = mixed
    Q.quantize(d / "f.onnx", d / "i8.onnx", (8, 8), calib)
    ops = Q.fused_ops(d / "i8.onnx")
    n_convs = sum(n.op_type == "Conv" for n in onnx.load(str(d / "f.onnx")).graph.node)
    assert ops.get("QLinearConv") == n_convs and "Conv" not in ops


def test_bad_bits_and_labels_are_precise_errors():
    with pytest.raises(NasError, match="w2a8 cannot be deployed"):
        Q.check_bits(2, 8)
    with pytest.raises(NasError, match="unknown precision 'int3'"):
        Q.parse_label("int3")
    assert Q.parse_label("w4a8") == Q.Bits(4, 8) and Q.parse_label("int8").label == "int8"
    assert Q.Bits(32, 32).label == "fp32" and Q.Bits(8, 32).label == "w8a32"


def test_per_role_bits_six_bit_weights_and_narrow_activations_deploy_fused(tmp_path):
    """An APQ-style block: point-wise w6a4, depth-wise w8a6. 6-bit weights are the levels -31..31 in int8,
    4/6-bit activations take 2^b levels of uint8 over the calibrated range; every conv still fuses."""
    from onnx import numpy_helper

    spec = LayerSpec(name="b", op="ir", h=8, w=8, cin=16, cout=16, kernel=3, expand=4, mid=64, act="relu6",
                     expand_conv=True, residual=True, wbits=6, abits=4, dw_wbits=8, dw_abits=6)
    torch.manual_seed(0)
    export_onnx(build_layer(spec).eval(), tmp_path / "f.onnx", batch=1, input_shape=(16, 8, 8))
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 16, 8, 8)).astype(np.float32) for _ in range(4)]
    summary = Q.quantize(tmp_path / "f.onnx", tmp_path / "q.onnx", [spec], calib)
    assert summary["layers"] == ["w6a4/dw w8a6"]
    m = onnx.load(str(tmp_path / "q.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    producer = {o: n for n in m.graph.node for o in n.output}
    seen = {}
    for n in m.graph.node:
        if n.op_type != "Conv":
            continue
        w = inits[producer[n.input[1]].input[0]]
        depthwise = w.shape[1] == 1
        seen[depthwise] = (w.dtype, int(np.abs(w).max()))
    assert seen[True] == (np.int8, 127)  # depth-wise: 8-bit weights
    assert seen[False] == (np.int8, 31)  # point-wise: 6-bit levels in int8
    x = calib[0]
    ops = Q.fused_ops(tmp_path / "q.onnx")
    assert ops.get("QLinearConv") == 3 and "Conv" not in ops
    f, q = (run_onnx(ort_session(tmp_path / name, threads=1), x) for name in ("f.onnx", "q.onnx"))
    assert np.abs(f - q).mean() < 0.5 * np.abs(f).mean()


def test_four_bit_activation_scale_spans_the_calibrated_range_in_fifteen_steps(tmp_path):
    spec = LayerSpec(name="c", op="conv", h=8, w=8, cin=4, cout=8, kernel=3, act="relu", wbits=8, abits=4)
    torch.manual_seed(0)
    export_onnx(build_layer(spec).eval(), tmp_path / "f.onnx", batch=1, input_shape=(4, 8, 8))
    rng = np.random.default_rng(1)
    calib = [rng.standard_normal((1, 4, 8, 8)).astype(np.float32) for _ in range(3)]
    Q.quantize(tmp_path / "f.onnx", tmp_path / "q.onnx", [spec], calib)
    from onnx import numpy_helper

    m = onnx.load(str(tmp_path / "q.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    q_input = next(n for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == m.graph.input[0].name)
    lo = min(min(float(c.min()) for c in calib), 0.0)
    hi = max(max(float(c.max()) for c in calib), 0.0)
    assert float(inits[q_input.input[1]]) == pytest.approx((hi - lo) / 15, rel=1e-5)
    assert int(inits[q_input.input[2]]) == round(-lo / ((hi - lo) / 15))


@pytest.mark.parametrize("abits", [8, 32])
def test_four_bit_weights_are_the_levels_the_fake_quantizer_scores(tmp_path, abits):
    """w4a8 (static quantization) and w4a32 (weight-only) both store symmetric_weights' levels -7..7 and scale
    max|w| / 7 per channel, the weights the score's fake quantization rounds to: onnxruntime's own int4 grid
    (levels -8..7) is another one, and trained networks' w4a8 accuracy moved by several points between the two."""
    from onnx import numpy_helper

    from nas.bits import symmetric_weights

    spec = LayerSpec(name="b", op="ir", h=8, w=8, cin=16, cout=16, kernel=3, expand=4, mid=64, act="relu6",
                     expand_conv=True, residual=True, wbits=4, abits=abits)
    torch.manual_seed(0)
    export_onnx(build_layer(spec).eval(), tmp_path / "f.onnx", batch=1, input_shape=(16, 8, 8))
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 16, 8, 8)).astype(np.float32) for _ in range(4)]
    Q.quantize(tmp_path / "f.onnx", tmp_path / "q.onnx", [spec], calib)
    fm, qm = onnx.load(str(tmp_path / "f.onnx")), onnx.load(str(tmp_path / "q.onnx"))
    Q.unshare(fm)
    f_inits = {i.name: numpy_helper.to_array(i) for i in fm.graph.initializer}
    f_conv = {n.name: n for n in fm.graph.node if n.op_type == "Conv"}
    inits = {i.name: i for i in qm.graph.initializer}
    producer = {o: n for n in qm.graph.node for o in n.output}
    checked = 0
    for n in qm.graph.node:
        if n.op_type != "Conv":
            continue
        dq = producer[n.input[1]]
        assert inits[dq.input[0]].data_type == TensorProto.INT4
        levels = numpy_helper.to_array(inits[dq.input[0]]).astype(np.int32)
        scale = numpy_helper.to_array(inits[dq.input[1]])
        want_levels, want_scale = symmetric_weights(f_inits[f_conv[n.name].input[1]], 4, axis=0)
        np.testing.assert_array_equal(levels, want_levels)
        np.testing.assert_allclose(scale, want_scale, rtol=1e-6)
        assert np.abs(levels).max() == 7
        checked += 1
    assert checked == 3
