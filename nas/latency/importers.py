"""Convert published latency lookup tables into our schema: the one place that knows their key schemes.

Run ``python -m nas.latency.importers [--data ../shared/data] [--out latency_tables]`` to regenerate the
shipped tables from ../shared/data/edge_luts. The converted files are committed, so nothing at run time
needs ../shared/data.

Key schemes translated here (and nowhere else):

* HW-NAS-Bench FBNet ``op_key``: ``ConvNorm_H.._W.._Cin.._Cout.._kernel.._stride.._group..`` (stem and head
  conv, ReLU), ``ConvBlock_H.._W.._Cin.._Cout.._exp.._kernel.._stride.._group..`` (MBConv, ReLU, 1x1 expand
  conv always present), ``Skip_H.._W.._Cin.._Cout.._stride..`` (identity, or 1x1 projection),
  ``AvgP_H.._W.._Cin.._Cout.._kernel.._stride..`` (global pool), ``FC_Cin.._Cout..`` (classifier).
* OFA MobileNetV3: ``expanded_conv-input:HxWxC-output:HxWxC-expand:MID-kernel:K-stride:S-idskip:I-se:E-hs:A``
  where MID is the mid-channel count; ``Conv`` = first 3x3 stride-2 conv (h-swish), ``Conv_1`` = final 1x1
  expand conv (h-swish), ``AvgPool2D``, ``Conv_2`` = feature-mix linear 1152->1536 (h-swish, no bias),
  ``Logits`` = classifier.
* ProxylessNAS mobile: the same scheme with the expansion *ratio* in ``expand`` and no se/hs (ReLU6);
  ``Logits`` covers pooling + classifier, so the pool gets a 0 ms row noted as folded into Logits; the
  'zero' op (our identity ``skip``) is absent from the network and gets a 0 ms row noted as such.
* APQ BitFusion (``lut/BitFusion_new.b1.dict``): ``(cin, cout, input_size, kernel, stride, padding, groups)-W<w>A<a>``
  per conv, with ``latency`` (ms) and ``energy`` (mJ); ``head`` and ``tail`` are constants for the layers APQ's
  spec never varies (stem conv + the fixed MBConv1; final 1x1 conv + pool + classifier). Imported as a per-conv
  table (``granularity: conv``: an MBConv = its expand, depth-wise and project convs, at its point-wise and
  depth-wise bits, as APQ's ``predict_lat`` sums them) with ``head`` / ``tail`` as ``fixed`` groups.
* HELP's whole-network FBNet latencies (``dev/fbnet_measured_latency_dev.csv``: Titan X, Xeon Gold 6226,
  Samsung S7): no per-layer key at all; per-layer tables are *fitted* (``nas.latency.fitted``), their metadata
  saying so with the held-out quality.
"""
from __future__ import annotations

import argparse
import csv
import math
import re
from pathlib import Path

from nas.errors import NasError
from nas.layers import LayerSpec
from nas.latency.table import SHIPPED_DIR, Entry, LatencyTable, new_meta

DEFAULT_DATA = SHIPPED_DIR.parent.parent / "shared" / "data"
CONVERTER = "python -m nas.latency.importers"

HWNB_DEVICES = {
    "edgegpu": "NVIDIA Jetson TX2 edge GPU",
    "raspi4": "Raspberry Pi 4",
    "pixel3": "Google Pixel 3 phone",
    "eyeriss": "Eyeriss ASIC (analytical model)",
    "fpga": "FPGA (analytical model)",
}
HWNB_ENERGY = ("edgegpu", "eyeriss", "fpga")
HWNB_PROVENANCE = {"source": "HW-NAS-Bench (GATECH-EIC/HW-NAS-Bench), FBNet op lookup tables via a JSON dump "
                             "of its FBNet metrics", "commit": "393bb8a", "license": "MIT",
                   "paper": "Li et al., HW-NAS-Bench, ICLR 2021"}
HWNB_FILES = {"fbnet-c100": "hwnasbench_fbnet_layer_lut_cifar100.csv",
              "fbnet-in1k": "hwnasbench_fbnet_layer_lut_ImageNet.csv"}
OFA_FILE = "ofa_note10_mbv3_op_lut.csv"
PROXYLESS_FILE = "proxylessnas_mobile_trim_op_lut.csv"
APQ_FILE = "apq_bitfusion_b1.json"
APQ_PROVENANCE = {"source": "APQ (mit-han-lab/apq), lut/BitFusion_new.b1.dict, read by utils/latency_predictor.py",
                  "commit": "428190a",
                  "license": "BSD-style, redistributed with its notice: Copyright (c) 2020, Tianzhe Wang, Kuan Wang, "
                             "Han Cai, Ji Lin, Zhijian Liu, Song Han",
                  "paper": "Wang et al., APQ: Joint Search for Network Architecture, Pruning and Quantization "
                           "Policy, CVPR 2020", "files": [APQ_FILE], "converter": CONVERTER}
APQ_FIXED = {"head": ["stem.0", "stage0.block0"], "tail": ["head.0", "head.1", "head.2"]}
HELP_FILE = "dev/fbnet_measured_latency_dev.csv"
HELP_DEVICES = {  # device name: (column, description)
    "titanx": ("titanx_1_ms", "NVIDIA Titan X GPU, batch 1 (HELP's measurements)"),
    "gold6226": ("gold_6226_ms", "Intel Xeon Gold 6226 server CPU (HELP's measurements)"),
    "samsung-s7": ("samsung_s7_ms", "Samsung Galaxy S7 phone (HELP's measurements; whole milliseconds)"),
}
HELP_PROVENANCE = {"source": "HELP (HayeonLee/HELP), FBNet whole-network latencies, via the development file "
                             f"{HELP_FILE} (5,000 architectures)", "commit": "45f70eb", "license": "MIT",
                   "paper": "Lee et al., HELP: Hardware-Adaptive Efficient Latency Prediction for NAS via "
                            "Meta-Learning, NeurIPS 2021", "files": [HELP_FILE], "converter": CONVERTER}


def _spec(**kw) -> LayerSpec:
    return LayerSpec(name="", **kw)


# --------------------------------------------------------------------------------------------------------
# HW-NAS-Bench FBNet op_key
# --------------------------------------------------------------------------------------------------------
def _fields(key: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"_([A-Za-z]+?)(\d+)(?=_|$)", key)}


def hwnasbench_spec(op_key: str) -> LayerSpec:
    """HW-NAS-Bench FBNet ``op_key`` -> LayerSpec (act ReLU, float, as in HW-NAS-Bench's FBNet)."""
    kind = op_key.split("_", 1)[0]
    f = _fields(op_key)
    try:
        if kind == "ConvNorm":
            return _spec(op="conv", h=f["H"], w=f["W"], cin=f["Cin"], cout=f["Cout"], kernel=f["kernel"],
                         stride=f["stride"], groups=f["group"], act="relu")
        if kind == "ConvBlock":
            e = f["exp"]
            return _spec(op="ir", h=f["H"], w=f["W"], cin=f["Cin"], cout=f["Cout"], kernel=f["kernel"],
                         stride=f["stride"], expand=e, mid=f["Cin"] * e, groups=f["group"], act="relu",
                         expand_conv=True)
        if kind == "Skip":
            return _spec(op="skip", h=f["H"], w=f["W"], cin=f["Cin"], cout=f["Cout"], stride=f["stride"])
        if kind == "AvgP":
            return _spec(op="pool", h=f["H"], w=f["W"], cin=f["Cin"], cout=f["Cout"])
        if kind == "FC":
            return _spec(op="linear", h=1, w=1, cin=f["Cin"], cout=f["Cout"], bn=False, bias=True)
    except KeyError as exc:
        raise NasError(f"HW-NAS-Bench key lacks field {exc}", where=op_key) from None
    raise NasError(f"unknown HW-NAS-Bench op type '{kind}'", where=op_key)


def import_hwnasbench(data: Path) -> dict[str, LatencyTable]:
    tables = {}
    for dev, desc in HWNB_DEVICES.items():
        meta = new_meta(
            device=dev, description=f"{desc}, FBNet layers as published by HW-NAS-Bench",
            runtime="as published by HW-NAS-Bench (see provenance.paper)", runtime_version="n/a",
            threads="n/a", batch=1, dtype="fp32", date="published 2021",
            protocol="published per-op lookup table; network latency = sum of stem, 22 layers, head conv, pool, fc",
            spread="std", spaces=list(HWNB_FILES), provenance=dict(HWNB_PROVENANCE, files=list(HWNB_FILES.values()),
                                                                   converter=CONVERTER),
            energy=dev in HWNB_ENERGY, notes="spread and repeats are not published (0)")
        tables[dev] = LatencyTable(meta=meta)
    for space, fname in HWNB_FILES.items():
        with open(data / "edge_luts" / fname, newline="") as fh:
            for row in csv.DictReader(fh):
                sig = hwnasbench_spec(row["op_key"]).signature
                for dev, table in tables.items():
                    energy = row.get(f"{dev}_energy_mJ")
                    table.add(sig, Entry(float(row[f"{dev}_latency_ms"]), 0.0, 0,
                                         float(energy) if dev in HWNB_ENERGY else None, row["op_key"]),
                              where=f"{fname} ({dev})")
    return tables


# --------------------------------------------------------------------------------------------------------
# OFA / ProxylessNAS expanded_conv keys
# --------------------------------------------------------------------------------------------------------
def _parse_mit_key(key: str) -> tuple[str, dict[str, str]]:
    kind, *parts = key.split("-")
    fields = {}
    for p in parts:
        name, _, value = p.partition(":")
        fields[name] = value
    return kind, fields


def _shape(text: str) -> list[int]:
    return [int(x) for x in text.split("x")]


def mit_spec(key: str, *, scheme: str) -> LayerSpec:
    """An OFA (``scheme='ofa'``) or ProxylessNAS (``'proxyless'``) LUT key -> LayerSpec."""
    kind, f = _parse_mit_key(key)
    (h, w, cin) = _shape(f["input"])
    out = _shape(f["output"])
    act = "hswish" if scheme == "ofa" else "relu6"
    if kind == "Conv":  # first conv: 3x3, stride from the shapes
        return _spec(op="conv", h=h, w=w, cin=cin, cout=out[2], kernel=3, stride=h // out[0], act=act)
    if kind == "Conv_1":  # final 1x1 expand conv
        return _spec(op="conv", h=h, w=w, cin=cin, cout=out[2], kernel=1, stride=1, act=act)
    if kind == "AvgPool2D":
        return _spec(op="pool", h=h, w=w, cin=cin, cout=out[2])
    if kind == "Conv_2":  # OFA feature-mix layer: linear 1152 -> 1536, h-swish, no bias
        return _spec(op="linear", h=1, w=1, cin=cin, cout=out[2], act="hswish", bn=False)
    if kind == "Logits":  # OFA: on the 1x1 features; ProxylessNAS: pool + linear on the HxW features
        return _spec(op="linear", h=1, w=1, cin=cin, cout=out[-1], bn=False, bias=True)
    if kind != "expanded_conv":
        raise NasError(f"unknown layer type '{kind}'", where=key)
    kernel, stride, idskip = int(f["kernel"]), int(f["stride"]), int(f["idskip"])
    if scheme == "ofa":
        mid = int(f["expand"])
        expand = mid / cin
        se, act = f["se"] == "1", ("hswish" if f["hs"] == "1" else "relu")
    else:
        expand = float(f["expand"])
        mid = int(round(cin * expand))
        se, act = False, "relu6"
    expand = int(expand) if float(expand).is_integer() else expand
    spec = _spec(op="ir", h=h, w=w, cin=cin, cout=out[2], kernel=kernel, stride=stride, expand=expand, mid=mid,
                 se=se, act=act, expand_conv=expand != 1, residual=bool(idskip))
    if spec.out_hw != (out[0], out[1]) or idskip != int(stride == 1 and cin == out[2]):
        raise NasError("shape or idskip inconsistent with kernel/stride/channels", where=key)
    return spec


def import_ofa(data: Path) -> LatencyTable:
    meta = new_meta(
        device="note10", description="Samsung Galaxy Note10 phone, OFA MobileNetV3 w1.2 supernet blocks",
        runtime="TensorFlow Lite as used by Once-for-All (see provenance)", runtime_version="n/a",
        threads="n/a", batch=1, dtype="fp32", date="published 2020",
        protocol="published per-block lookup tables, one per input resolution (mean and std over `repeats` "
                 "runs; rows carry their resolution); network latency = "
                 "Conv + blocks + Conv_1 + AvgPool2D + Conv_2 + Logits, as OFA's MBv3LatencyTable sums it",
        spread="std", spaces=["ofa-mbv3"],
        provenance={"source": "Once-for-All (mit-han-lab/once-for-all), Note10 latency lookup table",
                    "commit": "698a5c1",
                    "license": "Apache-2.0 (Copyright 2019 Han Cai from MIT; see latency_tables/LICENSES.md)",
                    "files": [OFA_FILE], "converter": CONVERTER})
    table = LatencyTable(meta=meta)
    with open(data / "edge_luts" / OFA_FILE, newline="") as fh:
        for row in csv.DictReader(fh):
            sig = mit_spec(row["op_key"], scheme="ofa").signature
            table.add(sig, Entry(float(row["mean_ms"]), float(row["std_ms"]), int(row["count"]), None,
                                 row["op_key"]), resolution=int(row["resolution"]), where=OFA_FILE)
    return table


def import_proxyless(data: Path) -> LatencyTable:
    meta = new_meta(
        device="proxyless-mobile", description="ProxylessNAS 'mobile' phone (Pixel 1 in the paper), "
                                               "ProxylessNAS mobile blocks at 224 px",
        runtime="TensorFlow Lite as used by ProxylessNAS (see provenance)", runtime_version="n/a",
        threads="n/a", batch=1, dtype="fp32", date="published 2019",
        protocol="published per-block lookup table (mean and variance over `repeats` runs; spread = sqrt(var)); "
                 "network latency = Conv + MBConv blocks + Conv_1 + Logits (pool folded into Logits), as "
                 "OFA's ProxylessNASLatencyTable sums it",
        spread="std", spaces=["proxylessnas-mobile"],
        provenance={"source": "han-cai/files (ProxylessNAS LatencyTools mobile_trim.yaml)", "commit": "a7c9bcd",
                    "license": "no license file in the source repository; the code reading it "
                               "(mit-han-lab/proxylessnas, once-for-all) is MIT",
                    "files": [PROXYLESS_FILE], "converter": CONVERTER})
    table = LatencyTable(meta=meta)
    with open(data / "edge_luts" / PROXYLESS_FILE, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        spec = mit_spec(row["op_key"], scheme="proxyless")
        repeats = int(row["count"])
        table.add(spec.signature, Entry(float(row["mean_ms"]), math.sqrt(float(row["var"])), repeats, None,
                                        row["op_key"]), where=PROXYLESS_FILE)
        if row["op_type"] == "Logits":
            _, f = _parse_mit_key(row["op_key"])
            h, w, c = _shape(f["input"])
            pool = _spec(op="pool", h=h, w=w, cin=c, cout=c)
            table.add(pool.signature, Entry(0.0, 0.0, repeats, None, row["op_key"],
                                            "folded: pooling is measured inside the Logits entry"))
        if spec.op == "ir" and spec.residual:
            ident = _spec(op="skip", h=spec.h, w=spec.w, cin=spec.cin, cout=spec.cout, stride=1, residual=True)
            table.add(ident.signature, Entry(0.0, 0.0, 0, None, "zero",
                                             "ProxylessNAS zero op: the block is left out, nothing runs"))
    return table


def apq_key(conv: LayerSpec) -> str:
    """APQ's BitFusion key of one conv (``LayerSpec.convs()``): padding k // 2 as APQ's convs use."""
    return (f"({conv.cin}, {conv.cout}, {conv.h}, {conv.kernel}, {conv.stride}, {conv.kernel // 2}, {conv.groups})"
            f"-W{conv.wbits}A{conv.abits}")


def import_apq(data: Path) -> LatencyTable:
    """The BitFusion table: every conv the ``apq`` space can contain, looked up by APQ's key."""
    import json

    from nas.latency.signatures import space_signatures
    from nas.space import load_space

    lut = json.loads((data / "edge_luts" / APQ_FILE).read_text())
    space = load_space("apq")
    fixed = [{"space": "apq", "layers": layers, "latency_ms": float(lut[k]["latency"]),
              "energy_mJ": float(lut[k]["energy"]), "source_key": k} for k, layers in APQ_FIXED.items()]
    meta = new_meta(
        device="bitfusion", description="BitFusion bit-flexible accelerator (simulated, batch 1), as APQ measured "
                                        "it: latency and energy of each conv at W4/6/8 x A4/6/8",
        runtime="BitFusion simulator as used by APQ (see provenance)", runtime_version="n/a", threads="n/a",
        batch=1, dtype="arch", date="published 2020",
        protocol="published per-conv lookup table (latency ms, energy mJ); network = head + tail + for each "
                 "present MBConv its 1x1 expand and 1x1 project convs at the point-wise bits and its depth-wise "
                 "conv at the depth-wise bits (APQ utils/latency_predictor.py::predict_lat)",
        spread="std", spaces=["apq"], provenance=APQ_PROVENANCE, granularity="conv", fixed=fixed,
        notes="spread and repeats are not published (0); residual adds are not priced (APQ does not)")
    table = LatencyTable(meta=meta)
    covered = {n for layers in APQ_FIXED.values() for n in layers}
    missing = set()
    for spec in space_signatures(space, "arch").values():
        if spec.name in covered:
            continue
        for conv in spec.convs():
            key = apq_key(conv)
            if key not in lut:
                missing.add(key)
                continue
            table.add(conv.signature, Entry(float(lut[key]["latency"]), 0.0, 0, float(lut[key]["energy"]), key),
                      where=APQ_FILE)
    if missing:
        raise NasError(f"{len(missing)} conv(s) of space apq have no entry, e.g. {sorted(missing)[0]}",
                       where=APQ_FILE, fix="the apq space and APQ's table disagree: check search_spaces/apq.yaml")
    return table


def import_help(data: Path) -> dict[str, LatencyTable]:
    """Per-layer FBNet tables fitted (``nas.latency.fitted``) from HELP's whole-network measurements of three
    devices no published table covers: a desktop GPU, a server CPU and a phone. 20 % held out (seed 0) for
    the quality in the metadata, then refitted on all 5,000."""
    from nas.latency.fitted import fit_arrays
    from nas.space import load_space

    space = load_space("fbnet-c100")
    with open(data / HELP_FILE, newline="") as fh:
        rows = list(csv.DictReader(fh))
    archs = [space.parse(r["arch_str"]) for r in rows]
    out = {}
    for device, (column, description) in HELP_DEVICES.items():
        y = [float(r[column]) for r in rows]
        table = fit_arrays(space, archs, y, device, dtype="fp32", description=f"{description}, FBNet layers "
                           f"fitted from {len(y)} whole networks", provenance=dict(HELP_PROVENANCE, column=column)).table
        table.meta["date"] = "measured by HELP (published 2021); fitted by nas.latency.fitted"
        out[device] = table
    return out


def import_all(data: Path = DEFAULT_DATA) -> dict[str, LatencyTable]:
    if not (data / "edge_luts").is_dir():
        raise NasError("edge_luts/ not found", where=str(data), fix="give the folder that holds edge_luts/ (../shared/data)")
    tables = import_hwnasbench(data)
    tables["note10"] = import_ofa(data)
    tables["proxyless-mobile"] = import_proxyless(data)
    tables["bitfusion"] = import_apq(data)
    tables.update(import_help(data))
    return tables


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Regenerate latency_tables/ from ../shared/data/edge_luts")
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--out", default=str(SHIPPED_DIR))
    args = p.parse_args(argv)
    for name, table in import_all(Path(args.data)).items():
        path = table.write(Path(args.out) / f"{name}.csv")
        print(f"{name}: {len(table.entries)} signatures -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
