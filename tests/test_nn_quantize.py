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
