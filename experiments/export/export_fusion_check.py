"""Why a lone int8 block was slower than fp32, and the fix (nas.nn.quantize.unshare): timed side by side.

For a few mobilenet-c10 blocks (untrained, as the profiler builds them) it times, interleaved, 1 thread:
fp32, int8 quantized the old way (ORT quantize_static on the exported file as is: equal BN biases shared
between convs) and int8 via nas.nn.quantize (initializers unshared), and counts convs left in float after
onnxruntime's graph optimizations. Also whole untrained networks (int8 everywhere).

    python -m experiments.export.export_fusion_check   ->  <out-dir>/export_fusion_check.{csv,json}
                                                           (out-dir: experiments/export/results)
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd
import torch

from experiments.harness import add_out_dir, write_results
from nas.nn import quantize as Q
from nas.latency.measure.timing import calibration_inputs, input_shape, measure_onnx
from nas.nn.onnx import export_onnx
from nas.layers import LayerSpec, plan
from nas.nn.build import build_layer, build_model
from nas.space import load_space


def old_quantize(src: Path, dst: Path, shape) -> None:
    """What the profiler did before nas.nn.quantize: quantize_static on the exported graph unchanged."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    data = iter([{"x": x} for x in calibration_inputs(shape, 4, 0)])

    class Reader(CalibrationDataReader):
        def get_next(self):
            return next(data, None)

    with Q._quiet():
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def variants(module, shape, work: Path, stem: str):
    fp = work / f"{stem}.onnx"
    export_onnx(module, fp, batch=shape[0], input_shape=tuple(shape[1:]))
    old, new = work / f"{stem}.old.onnx", work / f"{stem}.new.onnx"
    old_quantize(fp, old, shape)
    Q.quantize(fp, new, (8, 8), calibration_inputs(shape, 4, 0))
    return fp, old, new


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_out_dir(p, "export")
    args = p.parse_args()
    torch.set_num_threads(1)
    blocks = {
        "dw k5 relu6 e1 (stage-0 like)": LayerSpec(name="b", op="ir", h=32, w=32, cin=32, cout=16, kernel=5,
                                                   expand=1.0, mid=32, act="relu6", wbits=8, abits=8),
        "ir k5 e6 relu6": LayerSpec(name="b", op="ir", h=16, w=16, cin=32, cout=32, kernel=5, expand=6.0, mid=192,
                                    act="relu6", expand_conv=True, residual=True, wbits=8, abits=8),
        "ir k3 e3 hswish se": LayerSpec(name="b", op="ir", h=16, w=16, cin=32, cout=32, kernel=3, expand=3.0, mid=96,
                                        act="hswish", se=True, expand_conv=True, residual=True, wbits=8, abits=8),
    }
    space = load_space("mobilenet-c10")
    rows, models = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for i, (label, spec) in enumerate(blocks.items()):
            torch.manual_seed(0)
            shape = input_shape(spec)
            models.append((label, shape, variants(build_layer(spec).eval(), shape, work, f"b{i}")))
        for j, arch in enumerate(space.sample_many(2, seed=11)):
            model = build_model(arch, space, seed=0)
            shape = (1, *model.input_shape)
            models.append((f"network {j} ({len(plan(arch, space))} layers)", shape,
                           variants(model, shape, work, f"n{j}")))
        flat = [(p, shape) for _, shape, ps in models for p in ps]
        times = measure_onnx(flat, threads=1, rounds=7, warmup=5, repeats=20, stat="median", progress=False).values
        for k, (label, _, ps) in enumerate(models):
            (fp, _), (old, _), (new, _) = times[3 * k:3 * k + 3]
            ops_old, ops_new = Q.fused_ops(ps[1]), Q.fused_ops(ps[2])
            rows.append({"model": label, "fp32_ms": fp, "int8_shared_ms": old, "int8_unshared_ms": new,
                         "speedup_shared": fp / old, "speedup_unshared": fp / new,
                         "float_convs_shared": ops_old.get("Conv", 0) + ops_old.get("FusedConv", 0),
                         "float_convs_unshared": ops_new.get("Conv", 0) + ops_new.get("FusedConv", 0),
                         "qlinearconv_unshared": ops_new.get("QLinearConv", 0)})
    df = pd.DataFrame(rows)
    write_results(args.out_dir, "export_fusion_check", rows=df)
    with pd.option_context("display.width", 200):
        print(df.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
