"""Float ONNX -> deployed ONNX at each layer's bit-widths: the one quantizer used by ``nas export`` and by the
latency profiler (so a table measures exactly what export ships).

Scheme (onnxruntime static quantization, QDQ format, opset 21; see the guide's stack facts):

====================  ===================================================================================
layer bits            deployed form
====================  ===================================================================================
w32a32                float: the layer's nodes are excluded from quantization
w8a8                  int8: per-channel symmetric QInt8 weights, per-tensor QUInt8 activations (MinMax
                      calibration), int32 biases -> onnxruntime fuses every conv (depthwise too) into
                      QLinearConv
w4a8                  as w8a8 with per-channel QInt4 weights (opset 21) at our scale max|w| / 7 (levels
                      -7..7, :func:`nas.bits.symmetric_weights`, passed as overrides), the weights the
                      weight-only path, the score's fake quantization and QAT use; onnxruntime's own int4
                      grid (-8..7) differed, and a trained network's w4a8 accuracy swung by several points
                      either way between the two grids. onnxruntime runs them as DequantizeLinear -> float
                      Conv: smaller file, not faster
w6a8                  as w8a8 with 6-bit weights in the QInt8 container: per-channel scale max|w| / 31, so the
                      stored int8 values are the 6-bit levels -31..31 (fused like int8)
a4, a6                as a8 with 4 / 6-bit activations in the QUInt8 container: scale (max - min) / (2^b - 1)
                      from the MinMax calibration range, so calibrated values take 2^b levels (fused like int8;
                      a value beyond the calibrated range is not clipped to 2^b - 1)
w16 / a16             QInt16 weights / QUInt16 activations (run unfused)
w4a32, w8a32, w16a32  weight-only: per-channel symmetric int4 / int8 / int16 weights + DequantizeLinear,
                      float activations (inserted here: onnxruntime has no static weight-only mode)
w32a8, w32a16         activation-only: QDQ on the activations, float weights
====================  ===================================================================================

ONNX nodes are mapped back to layers by the module names the exporter writes (``/layers/layers.<i>/...``, the
``i``-th LayerSpec of the plan); a graph without such names (a single layer, as the profiler exports it) is
one layer. Within a layer a depth-wise Conv (``group`` > 1, one input channel per group) takes the layer's
depth-wise bits (``LayerSpec.dw_wbits`` / ``dw_abits``), every other node the layer's bits; an activation
tensor is quantized at the activation bits of the Conv / Gemm that reads it.

**Shared initializers.** ``torch.onnx.export`` deduplicates equal initializers: two convs whose folded BN
biases are equal (always the case in an untrained network: BN starts at weight 1, bias 0) share *one* bias
tensor, often through ``Identity`` nodes. onnxruntime's quantizer then quantizes that bias once, with the first
conv's scale (input scale x weight scale); the second conv's bias scale is wrong, the QDQ -> QLinearConv fusion
refuses it and the conv stays DequantizeLinear -> float Conv -> QuantizeLinear (a lone depthwise block measured
3.5x slower than fp32 this way; whole untrained networks kept ~6 of 57 convs in float). :func:`unshare`
gives every conv / gemm its own copy of each initializer before quantizing. ``quant_pre_process`` does not
help: its optimizer shares constants too.
"""
from __future__ import annotations

import logging
import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

import numpy as np

from nas.bits import FLOAT_BITS, Bits, check_bits, parse_label, symmetric_weights  # noqa: F401 (re-exported)
from nas.errors import NasError

WEIGHT_OPS = ("Conv", "Gemm", "MatMul", "ConvTranspose")  # ops whose initializer inputs are weights
_LAYER_RE = re.compile(r"(?:^|/)layers\.(\d+)(?:/|\.|$)")
FLOAT = FLOAT_BITS


def _qtype(bits: int, *, weight: bool):
    from onnxruntime.quantization import QuantType

    if weight:
        return {4: QuantType.QInt4, 8: QuantType.QInt8, 16: QuantType.QInt16}[bits]
    return {8: QuantType.QUInt8, 16: QuantType.QUInt16}[bits]


# --------------------------------------------------------------------------------------------------------
# graph surgery
# --------------------------------------------------------------------------------------------------------
def unshare(model) -> int:
    """Give every weight op (Conv, Gemm, ...) its own copy of each initializer input; drop Identity aliases of
    initializers. Modifies ``model`` (onnx.ModelProto) in place; returns how many inputs were rewired."""
    import onnx

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    outputs = {o.name for o in g.output}
    alias = {n.output[0]: n.input[0] for n in g.node
             if n.op_type == "Identity" and n.input[0] in inits and n.output[0] not in outputs}
    used: set[str] = set()
    changed = 0
    for node in g.node:
        for k, name in enumerate(node.input):
            src = alias.get(name, name)
            if src not in inits:
                continue
            if node.op_type in WEIGHT_OPS and src in used:
                copy = onnx.TensorProto()
                copy.CopyFrom(inits[src])
                copy.name = f"{src}__{node.name or len(inits)}"
                g.initializer.append(copy)
                inits[copy.name] = copy
                src = copy.name
            if node.op_type in WEIGHT_OPS:
                used.add(src)
            if src != name:
                node.input[k] = src
                changed += 1
    keep = [n for n in g.node if not (n.op_type == "Identity" and n.output[0] in alias)]
    del g.node[:]
    g.node.extend(keep)
    return changed


def node_layers(model, n_layers: int) -> dict[str, int]:
    """ONNX node name -> layer index (``layers.<i>`` in the name; unnamed nodes follow their predecessor)."""
    if n_layers == 1:
        return {node.name: 0 for node in model.graph.node}
    out: dict[str, int] = {}
    current = 0
    for node in model.graph.node:
        m = _LAYER_RE.search(node.name)
        if m:
            current = int(m.group(1))
            if current >= n_layers:
                raise NasError(f"ONNX node '{node.name}' belongs to layer {current}, the plan has {n_layers}",
                               where="quantize", fix="quantize the ONNX file exported from this architecture")
        out[node.name] = current
    return out


def _weight_only(model, node_names: set[str], bits_of: dict[str, Bits]) -> None:
    """Replace float weights of the given nodes by per-channel symmetric int tensors + DequantizeLinear."""
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    dtype = {4: TensorProto.INT4, 8: TensorProto.INT8, 16: TensorProto.INT16}
    new_nodes = []
    for node in g.node:
        if node.name not in node_names or node.op_type not in WEIGHT_OPS or len(node.input) < 2:
            continue
        wname = node.input[1]
        if wname not in inits:
            continue
        w = numpy_helper.to_array(inits[wname]).astype(np.float32)
        bits = bits_of[node.name].wbits
        axis = _weight_axis(node)
        q, scale = symmetric_weights(w, bits, axis)
        if bits == 6:  # 6-bit levels in the int8 container (ONNX has no 6-bit type)
            bits = 8
        qname = f"{wname}_w{bits}"
        g.initializer.append(helper.make_tensor(qname, dtype[bits], w.shape, q.flatten().tolist()))
        g.initializer.append(numpy_helper.from_array(scale, f"{qname}_scale"))
        g.initializer.append(helper.make_tensor(f"{qname}_zero_point", dtype[bits], scale.shape, [0] * scale.size))
        new_nodes.append(helper.make_node("DequantizeLinear", [qname, f"{qname}_scale", f"{qname}_zero_point"],
                                          [f"{qname}_dq"], name=f"{qname}_DequantizeLinear", axis=axis))
        node.input[1] = f"{qname}_dq"
        inits.pop(wname)
    if new_nodes:
        used = {x for n in g.node for x in n.input} | {x for n in new_nodes for x in n.input}
        keep = [i for i in g.initializer if i.name in used]
        del g.initializer[:]
        g.initializer.extend(keep)
        nodes = new_nodes + list(g.node)
        del g.node[:]
        g.node.extend(nodes)


def _weight_axis(node) -> int:
    """The output-channel axis of a weight: 0 for Conv and Gemm(transB=1) as torch exports them."""
    return 1 if node.op_type in ("Gemm", "MatMul") and not (node.op_type == "Gemm" and _attr(node, "transB", 0)) else 0


def _attr(node, name: str, default):
    for a in node.attribute:
        if a.name == name:
            from onnx import helper

            return helper.get_attribute_value(a)
    return default


def _restore_float_weights(qmodel, fmodel, node_names: set[str]) -> None:
    """Activation-only layers: put the float weights (and biases) back on the given nodes of ``qmodel``."""
    from onnx import numpy_helper

    finit = {i.name: i for i in fmodel.graph.initializer}
    fnodes = {n.name: n for n in fmodel.graph.node}
    g = qmodel.graph
    for node in g.node:
        if node.name not in node_names or node.op_type not in WEIGHT_OPS:
            continue
        for k in range(1, len(node.input)):
            src = fnodes[node.name].input[k] if node.name in fnodes and k < len(fnodes[node.name].input) else ""
            if src in finit and node.input[k] != src:
                if src not in {i.name for i in g.initializer}:
                    g.initializer.append(numpy_helper.from_array(numpy_helper.to_array(finit[src]), src))
                node.input[k] = src
    _prune(qmodel)


def _prune(model) -> None:
    """Drop nodes and initializers nothing consumes (dead DequantizeLinear of replaced weights)."""
    g = model.graph
    while True:
        used = {x for n in g.node for x in n.input} | {o.name for o in g.output}
        dead = [n for n in g.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    used = {x for n in g.node for x in n.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)


# --------------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------------
@contextmanager
def _quiet():
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # the quantizer's own sessions warn about initializers it orphaned
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # ORT logs a pre-processing hint through the root logger on every call
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def layer_bits(layers) -> list[Bits]:
    """Bits of each layer (its point-wise convs') from LayerSpecs, (wbits, abits) pairs or Bits."""
    return [pw for pw, _ in role_bits(layers)]


def role_bits(layers) -> list[tuple[Bits, Bits]]:
    """(point-wise bits, depth-wise bits) of each layer from LayerSpecs, (wbits, abits) pairs or Bits (the same
    bits for both roles)."""
    out = []
    for i, l in enumerate(layers):
        if isinstance(l, Bits):
            out.append((l, l))
        elif isinstance(l, tuple):
            b = check_bits(*l, where=f"layer {i}")
            out.append((b, b))
        else:
            where = getattr(l, "key", f"layer {i}")
            out.append((check_bits(l.wbits, l.abits, where=where), check_bits(l.dw_wbits, l.dw_abits, where=where)))
    return out


def _is_depthwise(node, inits: dict) -> bool:
    if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in inits:
        return False
    return int(_attr(node, "group", 1)) > 1 and list(inits[node.input[1]].dims)[1:2] == [1]


def node_bits(model, layers) -> dict[str, Bits]:
    """ONNX node name -> the Bits it runs at (its layer's, or the layer's depth-wise bits for a depth-wise Conv)."""
    roles = role_bits(layers)
    inits = {i.name: i for i in model.graph.initializer}
    where = node_layers(model, len(roles))
    return {n.name: roles[where[n.name]][1 if _is_depthwise(n, inits) else 0] for n in model.graph.node}


def quantize(fp32_path: str | Path, out_path: str | Path, layers, calibration: Iterable[np.ndarray], *,
             progress: bool = False) -> dict:
    """Quantize the float ONNX model at ``fp32_path`` to ``out_path`` at the layers' bit-widths.

    ``layers``: one entry per ``layers.<i>`` of the graph (LayerSpecs of the plan, (wbits, abits) pairs or
    Bits), or a single pair / Bits for the whole graph. ``calibration``: input arrays (each one batch of the
    model's input shape) for MinMax calibration of the activations. Returns a summary: precision label per
    layer, and counts of weight-only, activation-only and float-activation nodes.
    """
    import onnx

    if isinstance(layers, (Bits, tuple)):
        layers = [layers]
    fmodel = onnx.load(str(fp32_path))
    unshare(fmodel)
    bits_of = node_bits(fmodel, layers)
    excluded = [n for n, b in bits_of.items() if b.abits == FLOAT]
    weight_only = {n for n, b in bits_of.items() if b.abits == FLOAT and b.wbits < FLOAT}
    act_only = {n for n, b in bits_of.items() if b.abits < FLOAT and b.wbits == FLOAT}
    summary = {"layers": [pw.label if pw == dw else f"{pw.label}/dw {dw.label}" for pw, dw in role_bits(layers)],
               "weight_only_nodes": len(weight_only), "activation_only_nodes": len(act_only),
               "float_activation_nodes": len(excluded)}
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if len(excluded) == len(bits_of):  # nothing has quantized activations: no calibration needed
        _weight_only(fmodel, weight_only, bits_of)
        onnx.save(fmodel, str(out_path))
        return summary
    calibration = [np.asarray(x, dtype=np.float32) for x in calibration]
    tmp_in = out_path.with_name(out_path.name + ".unshared.onnx")
    onnx.save(fmodel, str(tmp_in))
    try:
        overrides = _overrides(fmodel, bits_of, tmp_in, calibration)
        _quantize_static(tmp_in, out_path, calibration, excluded, overrides)
    finally:
        tmp_in.unlink(missing_ok=True)
    if weight_only or act_only:
        qmodel = onnx.load(str(out_path))
        if act_only:
            _restore_float_weights(qmodel, fmodel, act_only)
        if weight_only:
            _weight_only(qmodel, weight_only, bits_of)
        onnx.save(qmodel, str(out_path))
    return summary


def _overrides(fmodel, bits_of: dict[str, Bits], path: Path, calibration: list[np.ndarray]) -> dict[str, list[dict]]:
    """onnxruntime TensorQuantOverrides for what is not plain int8: 4-bit and 16-bit types, 6-bit weights (an
    explicit per-channel scale max|w| / 31), 4 / 6-bit activations (an explicit scale over the calibrated range
    at 2^b - 1 levels, from a MinMax pass over ``calibration``)."""
    from onnx import numpy_helper

    inits = {i.name: i for i in fmodel.graph.initializer}
    overrides: dict[str, list[dict]] = {}
    act_bits: dict[str, int] = {}
    for node in fmodel.graph.node:
        b = bits_of[node.name]
        if b.abits == FLOAT:
            continue
        if node.op_type in WEIGHT_OPS and len(node.input) > 1 and node.input[1] in inits:
            axis = _weight_axis(node)
            if b.wbits in (4, 6):  # our own scale: levels -qmax..qmax, as symmetric_weights rounds them
                _, scale = symmetric_weights(numpy_helper.to_array(inits[node.input[1]]), b.wbits, axis)
                overrides[node.input[1]] = [{"quant_type": _qtype(8 if b.wbits == 6 else 4, weight=True), "axis": axis,
                                             "scale": np.array(sc, dtype=np.float32),
                                             "zero_point": np.array(0, dtype=np.int8)} for sc in scale]
            elif b.wbits not in (8, FLOAT):
                overrides[node.input[1]] = [{"quant_type": _qtype(b.wbits, weight=True), "axis": axis}]
            if node.input[0] not in inits:
                act_bits.setdefault(node.input[0], b.abits)  # the tensor a conv reads: at the conv's bits
        if b.abits == 16:
            for t in list(node.input) + list(node.output):
                if t and t not in inits:
                    overrides[t] = [{"quant_type": _qtype(16, weight=False)}]
    narrow = {t: a for t, a in act_bits.items() if a < 8}
    if narrow:
        for t, (lo, hi) in _ranges(path, calibration, list(narrow)).items():
            scale = max(hi - lo, 1e-8) / (2 ** narrow[t] - 1)
            overrides[t] = [{"quant_type": _qtype(8, weight=False), "scale": np.array(scale, dtype=np.float32),
                             "zero_point": np.array(min(255, max(0, round(-lo / scale))), dtype=np.uint8)}]
    return overrides


def _ranges(path: Path, calibration: list[np.ndarray], tensors: list[str]) -> dict[str, tuple[float, float]]:
    """MinMax range of each tensor over the calibration inputs, widened to contain 0 (as onnxruntime does)."""
    import onnx
    from onnx import helper

    from nas.nn.onnx import ort_session

    model = onnx.load(str(path))
    have = {o.name for o in model.graph.output}
    for t in tensors:
        if t not in have:
            model.graph.output.append(helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    probe = path.with_name(path.name + ".ranges.onnx")
    onnx.save(model, str(probe))
    try:
        session = ort_session(probe, threads=1, optimize=False)
        names = [o.name for o in session.get_outputs()]
        lo = {t: 0.0 for t in tensors}
        hi = {t: 0.0 for t in tensors}
        for x in calibration:
            outs = dict(zip(names, session.run(None, {session.get_inputs()[0].name: x})))
            for t in tensors:
                lo[t] = min(lo[t], float(outs[t].min()))
                hi[t] = max(hi[t], float(outs[t].max()))
    finally:
        probe.unlink(missing_ok=True)
    return {t: (lo[t], hi[t]) for t in tensors}


def _quantize_static(path: Path, out_path: Path, calibration: list[np.ndarray], excluded: list[str],
                     overrides: dict[str, list[dict]]) -> None:
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    input_name = onnx.load(str(path), load_external_data=False).graph.input[0].name
    batches = iter(calibration)

    class Reader(CalibrationDataReader):
        def get_next(self):
            x = next(batches, None)
            return None if x is None else {input_name: x}

    with _quiet():
        quantize_static(str(path), str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=excluded,
                        extra_options={"TensorQuantOverrides": overrides} if overrides else None)


def calibration_batches(x: np.ndarray) -> list[np.ndarray]:
    """Split an (N, C, H, W) array into N batch-1 arrays (exported models have a fixed batch of 1)."""
    x = np.asarray(x, dtype=np.float32)
    return [x[i:i + 1] for i in range(len(x))]



def fused_ops(path: str | Path, threads: int = 1) -> dict[str, int]:
    """Op-type counts of the graph onnxruntime actually runs (after its optimizations) - e.g. how many convs
    became QLinearConv and how many stayed float."""
    import collections
    import tempfile

    import onnx

    from nas.nn.onnx import ort_session

    with tempfile.TemporaryDirectory(prefix="nas-fused-") as tmp:
        optimized = Path(tmp) / "opt.onnx"
        ort_session(path, threads=threads, optimized_path=optimized)
        model = onnx.load(str(optimized))
    return dict(collections.Counter(n.op_type for n in model.graph.node))
