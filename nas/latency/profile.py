"""Profile layer signatures on this machine with onnxruntime, writing (or extending) a latency table.

Protocol (recorded in the table's metadata):

* each signature is built alone (``nas.model.build_layer``), exported to ONNX (TorchScript exporter, opset 21,
  BN folded) and deployed at its bit-widths by ``nas.quantize`` -- the quantizer ``nas export`` uses (int8:
  onnxruntime static QDQ, per-channel QInt8 weights, QUInt8 activations; w4: QInt4 weights; a32 with w<32:
  weight-only), calibrated with MinMax on a few seeded random inputs;
* one InferenceSession per model (all graph optimizations, ``intra_op_num_threads`` = --threads, sequential),
  input bound once with I/O binding, batch 1;
* signatures are measured in batches, *interleaved*: every round times each model of the batch in turn
  (warm-up, then ``repeats`` calls timed one by one);
* every timed call is *paired* with a call of a fixed reference kernel (``REFERENCE``, a small fp32
  inverted-residual block, run twice and timed the second time) made just before it; the sample is the ratio.
  A shared or virtualised CPU changes speed by 10-50 % within minutes; a ratio of two adjacent calls cancels
  most of that (``experiments/latency_drift_check.py``: the same networks measured in four sessions spread by
  3.6-12 % per network in plain times, 2.4-2.8 % as ratios). The ratios become
  milliseconds through one constant per table, ``reference_ms`` (the reference's median time in the first
  batch, stored in the metadata), so later batches, resumed runs and ``nas lut validate`` all share one scale;
* value = median (or ``--stat``) of the ratios minus the per-call overhead's (a 1-element Identity model timed the
  same way with each batch) and, for layers with quantized activations (a8), minus the
  Quantize/Dequantize boundary a layer alone pays and a quantized network does not (see ``boundary_timer``),
  times ``reference_ms``; spread = IQR;
* the table is rewritten atomically after every batch, so an interrupted run resumes where it stopped
  (a re-run measures only signatures not yet in the table).

Runs unchanged on a Raspberry Pi (or any board) with onnxruntime + torch installed: profile there, copy the
table's ``.csv`` and ``.meta.yaml`` back into ``latency_tables/`` (or a directory on $NAS_LATENCY_TABLES).
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from nas.errors import NasError
from nas.layers import LayerSpec
from nas.latency.signatures import arch_layers, check_dtype, space_signatures
from nas.latency.table import SHIPPED_DIR, Entry, LatencyTable, new_meta, read_table

from nas.onnx_export import OPSET  # one opset for every ONNX file the project writes
PROTOCOL_VERSION = 2  # 2: every timed call paired with the reference kernel (1: plain times, no reference_ms)
PROTOCOL = ("per signature: ONNX (opset 21, BN folded; quantized layers: nas.quantize = ORT static QDQ, "
            "per-channel QInt8/QInt4 weights, QUInt8 activations, weight-only for a32, MinMax on seeded random "
            "inputs, unshared initializers), batch 1, I/O binding, interleaved rounds of warm-up + timed calls, "
            "each timed call paired with the reference kernel called just before it (sample = ratio); "
            "value = (median (or `stat`) ratio - per-call overhead ratio (1-element Identity model) - for quantized "
            "activations the Q/DQ boundary ratio (half Q+DQ at input + half at output shape)) * reference_ms, "
            "spread = IQR")

# The reference kernel: fixed for every table and every machine (changing it changes the protocol version).
REFERENCE = LayerSpec(name="reference", op="ir", h=16, w=16, cin=32, cout=32, kernel=3, stride=1, expand=4,
                      mid=128, act="relu6", expand_conv=True, residual=True)


@dataclass(frozen=True, kw_only=True)
class ProfileConfig:
    threads: int = 1
    warmup: int = 10
    repeats: int = 30  # timed calls per model per round
    rounds: int = 3
    batch: int = 24  # signatures measured together (and the resume granularity)
    calib_samples: int = 4
    seed: int = 0
    stat: str = "median"  # value statistic: median (default), or p10 / min on a machine shared with other jobs


# --------------------------------------------------------------------------------------------------------
# ONNX building blocks (torch and onnxruntime imported here only)
# --------------------------------------------------------------------------------------------------------
def export_onnx(module, input_shape: tuple[int, ...], path: Path) -> Path:
    """One layer (or network) at a full input shape (batch first) -> ONNX file, via the shared exporter."""
    from nas.onnx_export import export_onnx as export

    export(module, path, batch=input_shape[0], input_shape=tuple(input_shape[1:]))
    return path


def calibration_inputs(input_shape: tuple[int, ...], samples: int, seed: int) -> list[np.ndarray]:
    """Seeded standard-normal inputs: a lone layer has no real data to calibrate on."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(input_shape).astype(np.float32) for _ in range(samples)]


def precision(spec: LayerSpec) -> str:
    """How a layer is deployed (``nas.quantize``): 'fp32' (w32a32), 'int8' (w8a8) or 'w<W>a<A>' (w4a8, w8a32, ...)."""
    from nas.quantize import check_bits

    return check_bits(spec.wbits, spec.abits, where=f"{spec.key} (--dtype)").label


def build_onnx(module, input_shape: tuple[int, ...], prec, workdir: Path, stem: str, *,
               calib_samples: int = 4, seed: int = 0) -> Path:
    """Export ``module`` and deploy it with ``nas.quantize`` at ``prec``: one precision label for the whole graph,
    or the list of LayerSpecs of a Network (each ``layers.<i>`` at its own bit-widths)."""
    from nas import quantize as Q

    path = export_onnx(module, input_shape, workdir / f"{stem}.onnx")
    if isinstance(prec, str):
        if prec == "fp32":
            return path
        layers = Q.parse_label(prec)
    else:
        layers = Q.layer_bits(prec)
        if all(b.is_float for b in layers):
            return path
    out = workdir / f"{stem}.q.onnx"
    Q.quantize(path, out, layers, calibration_inputs(input_shape, calib_samples, seed))
    return out


class Timer:
    """One InferenceSession with its input bound once; ``times(n)`` returns n per-call durations in ms."""

    def __init__(self, onnx_path: Path, input_shape: tuple[int, ...], threads: int, *, optimize: bool = True):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                       else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        so.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)
        self.binding = self.session.io_binding()
        self.binding.bind_cpu_input(self.session.get_inputs()[0].name, x)
        self.binding.bind_output(self.session.get_outputs()[0].name)

    def once(self) -> float:
        t0 = time.perf_counter_ns()
        self.session.run_with_iobinding(self.binding)
        return (time.perf_counter_ns() - t0) / 1e6

    def times(self, n: int) -> list[float]:
        run, binding = self.session.run_with_iobinding, self.binding
        out = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            run(binding)
            out.append((time.perf_counter_ns() - t0) / 1e6)
        return out


@dataclass
class Paired:
    """Samples of a paired measurement: per timer, ratios t_model / t_reference of adjacent calls, and the
    reference's own times (ms)."""

    ratios: list[list[float]]
    reference: list[float]

    def extend(self, other: "Paired") -> "Paired":
        return Paired([a + b for a, b in zip(self.ratios, other.ratios)], self.reference + other.reference)


def measure_paired(timers: list[Timer], reference: Timer, *, warmup: int, repeats: int, rounds: int,
                   first_round: bool = True) -> Paired:
    """Round-robin timing: every round warms up each timer, then times it ``repeats`` times, each call right
    after a timed call of ``reference``. The reference runs twice and only its second call is timed, so its time
    does not depend on what ran before it (a whole network evicts the caches, a small layer does not)."""
    ratios: list[list[float]] = [[] for _ in timers]
    ref: list[float] = []
    for r in range(rounds):
        for i, t in enumerate(timers):
            t.times(warmup if (r == 0 and first_round) else max(1, warmup // 5))
            for _ in range(repeats):
                reference.once()
                a = reference.once()
                ratios[i].append(t.once() / a)
                ref.append(a)
    return Paired(ratios, ref)


def reference_timer(workdir: Path, threads: int) -> Timer:
    """The fixed reference kernel (``REFERENCE``, fp32, weights seeded) as a Timer."""
    import torch

    from nas.model import build_layer

    torch.manual_seed(0)
    path = build_onnx(build_layer(REFERENCE), input_shape(REFERENCE), "fp32", workdir, "reference")
    return Timer(path, input_shape(REFERENCE), threads)


def overhead_timer(workdir: Path, threads: int) -> Timer:
    """A 1-element Identity model: what one call costs when (almost) nothing is computed."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "overhead",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    path = workdir / "overhead.onnx"
    onnx.save(model, str(path))
    return Timer(path, (1,), threads)


def boundary_timer(workdir: Path, shape: tuple[int, ...], threads: int) -> Timer:
    """QuantizeLinear -> DequantizeLinear on a float tensor of ``shape`` (graph optimizations off, so it runs).

    A single int8 layer alone pays Q at its input and DQ at its output; inside a quantized network those
    tensors stay 8-bit. Half the time of this model at the input shape plus half at the output shape is
    what the profiler subtracts from each int8 layer, besides the per-call overhead.
    """
    import onnx
    from onnx import TensorProto, helper

    inits = [helper.make_tensor("s", TensorProto.FLOAT, [], [0.05]), helper.make_tensor("z", TensorProto.UINT8, [], [128])]
    graph = helper.make_graph([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
                               helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])], "qdq",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))], inits)
    path = workdir / ("qdq_" + "x".join(map(str, shape)) + ".onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), str(path))
    return Timer(path, shape, threads, optimize=False)


def output_shape(spec: LayerSpec) -> tuple[int, int, int, int]:
    ho, wo = spec.out_hw
    return (1, spec.cout, ho, wo)


STATS = {"median": 50, "p10": 10, "min": 0}


def value(samples, stat: str = "median") -> float:
    if stat not in STATS:
        raise NasError(f"unknown statistic '{stat}'", where="--stat", fix=f"use one of {', '.join(STATS)}")
    return float(np.percentile(np.asarray(samples), STATS[stat]))


def summarize(ratios: list[float], sub_ratio: float, reference_ms: float, stat: str = "median"
              ) -> tuple[float, float, int]:
    """(ms, IQR ms, count) from paired ratios: (``stat`` ratio - ``sub_ratio``) * ``reference_ms``, where
    ``sub_ratio`` is what is subtracted (per-call overhead, Q/DQ boundary) in the same ratio units."""
    arr = np.asarray(ratios)
    q1, q3 = np.percentile(arr, [25, 75])
    return max(value(arr, stat) - sub_ratio, 0.0) * reference_ms, float(q3 - q1) * reference_ms, len(arr)


def input_shape(spec: LayerSpec) -> tuple[int, int, int, int]:
    return (1, spec.cin, 1, 1) if spec.op == "linear" else (1, spec.cin, spec.h, spec.w)


# --------------------------------------------------------------------------------------------------------
# profiling a table
# --------------------------------------------------------------------------------------------------------
def runtime_info(threads: int) -> dict:
    import onnxruntime as ort

    return {"runtime": "onnxruntime (CPUExecutionProvider)", "runtime_version": ort.__version__,
            "threads": threads, "host": f"{platform.machine()} {platform.processor() or ''} "
                                        f"{os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"}


def open_table(path: Path, *, device: str, space: str, dtypes: list[str], config: ProfileConfig,
               description: str | None) -> LatencyTable:
    """The existing table at ``path`` (checked to use the same protocol) or a new, empty one."""
    info = runtime_info(config.threads)
    if path.is_file():
        table = read_table(path)
        info["stat"] = config.stat
        if int(table.meta.get("protocol_version", 1)) != PROTOCOL_VERSION or not table.meta.get("reference_ms"):
            raise NasError(f"existing table was measured with profiler protocol "
                           f"{table.meta.get('protocol_version', 1)} (this is {PROTOCOL_VERSION}: calls paired with "
                           f"a reference kernel): mixing them would corrupt the table", where=str(path),
                           fix="profile into another --device-name (or delete the table to re-measure it)")
        for key in ("runtime_version", "threads", "stat"):
            if str(table.meta.get(key, "median")) != str(info[key]):
                raise NasError(f"existing table was measured with {key}={table.meta.get(key, 'median')}, this run "
                               f"uses {info[key]}: mixing them would corrupt the table", where=str(path),
                               fix="use the same setting or another --device-name")
        table.meta["spaces"] = sorted(set(table.meta["spaces"]) | {space})
        done = set(str(table.meta["dtype"]).split(","))
        table.meta["dtype"] = ",".join(sorted(done | set(dtypes)))
        return table
    meta = new_meta(device=device, description=description or f"{device}: profiled with nas lut profile",
                    runtime=info["runtime"], runtime_version=info["runtime_version"], threads=config.threads,
                    batch=1, dtype=",".join(dtypes), date=_dt.date.today().isoformat(), protocol=PROTOCOL,
                    spread="iqr", spaces=[space],
                    provenance={"source": "measured on this machine by `nas lut profile`", "commit": "n/a",
                                "license": "MIT (project license)", "host": info["host"]},
                    warmup=config.warmup, repeats=config.repeats, rounds=config.rounds, stat=config.stat,
                    protocol_version=PROTOCOL_VERSION, reference_kernel=REFERENCE.key)
    return LatencyTable(meta=meta)  # reference_ms is set by the first measured batch


def profile_specs(table: LatencyTable, specs: list[LayerSpec], config: ProfileConfig, path: Path, *,
                  progress: bool = True) -> int:
    """Measure ``specs`` not yet in ``table`` and save after every batch. Returns how many were measured."""
    import torch
    from tqdm import tqdm

    todo = [s for s in specs if (0, s.signature) not in table.entries]
    torch.set_num_threads(1)
    bar = tqdm(total=len(todo), desc=f"profile {table.device}", unit="sig", disable=not progress)
    with tempfile.TemporaryDirectory(prefix="nas-lut-ref-") as run_dir:  # built once, timed with every batch
        reference = reference_timer(Path(run_dir), config.threads)
        overhead = overhead_timer(Path(run_dir), config.threads)
        for start in range(0, len(todo), config.batch):
            _profile_batch(table, todo[start:start + config.batch], config, path, reference, overhead, bar)
    bar.close()
    return len(todo)


def _profile_batch(table: LatencyTable, batch: list[LayerSpec], config: ProfileConfig, path: Path,
                   reference: Timer, overhead_t: Timer, bar) -> None:
    """Measure one batch of signatures (interleaved, paired with ``reference``) and save the table."""
    import torch

    from nas.model import build_layer

    with tempfile.TemporaryDirectory(prefix="nas-lut-") as tmp:
        workdir = Path(tmp)
        timers = [overhead_t]
        shapes = sorted({sh for s in batch if s.abits < 32 for sh in (input_shape(s), output_shape(s))})
        timers += [boundary_timer(workdir, sh, config.threads) for sh in shapes]
        for i, spec in enumerate(batch):
            torch.manual_seed(config.seed)
            module = build_layer(spec)
            onnx_path = build_onnx(module, input_shape(spec), precision(spec), workdir, f"l{i}",
                                   calib_samples=config.calib_samples, seed=config.seed)
            timers.append(Timer(onnx_path, input_shape(spec), config.threads))
            bar.set_postfix_str(spec.key[:40])
        paired = measure_paired(timers, reference, warmup=config.warmup, repeats=config.repeats,
                                rounds=config.rounds)
    batch_ref = value(paired.reference, "median")
    if not table.meta.get("reference_ms"):
        table.meta["reference_ms"] = batch_ref
    ref_ms = float(table.meta["reference_ms"])
    overhead = value(paired.ratios[0], config.stat)
    boundary = {sh: max(value(x, config.stat) - overhead, 0.0) for sh, x in zip(shapes, paired.ratios[1:])}
    speed = f"reference {batch_ref * 1000:.0f} us in this batch"
    for spec, r in zip(batch, paired.ratios[1 + len(shapes):]):
        sub = overhead
        note = f"overhead {overhead * ref_ms * 1000:.1f} us"
        if spec.abits < 32:  # quantized activations: a lone layer pays Q at its input and DQ at its output
            qdq = (boundary[input_shape(spec)] + boundary[output_shape(spec)]) / 2
            sub += qdq
            note += f" + Q/DQ boundary {qdq * ref_ms * 1000:.1f} us"
        ms, iqr, n = summarize(r, sub, ref_ms, config.stat)
        table.add(spec.signature, Entry(ms, iqr, n, note=f"{note} subtracted; {speed}"))
    table.meta["date"] = _dt.date.today().isoformat()
    table.write(path)
    bar.update(len(batch))


def profile_space(space_name: str, device_name: str, *, dtypes: Iterable[str] = ("fp32",),
                  archs_csv: str | None = None, config: ProfileConfig = ProfileConfig(),
                  out_dir: str | Path | None = None, description: str | None = None,
                  progress: bool = True) -> Path:
    """Measure what ``space`` (or the architectures in ``archs_csv``) needs, for every dtype; returns the CSV path."""
    from nas.space import load_space

    space = load_space(space_name)
    dtypes = [check_dtype(d) for d in dtypes] or ["fp32"]
    if not device_name or "/" in device_name or device_name.startswith("."):
        raise NasError(f"invalid device name '{device_name}'", where="--device-name", fix="use e.g. my-pi4")
    if config.threads < 1:
        raise NasError("--threads must be at least 1", where="--threads")
    archs = None
    if archs_csv:
        from nas.arch_csv import read_archs

        archs = read_archs(space, archs_csv)
    specs: dict[tuple, LayerSpec] = {}
    for d in dtypes:
        found = arch_layers(archs, space, d) if archs is not None else space_signatures(space, d)
        specs.update(found)
    for spec in specs.values():
        precision(spec)  # fail before measuring anything
    path = Path(out_dir or SHIPPED_DIR) / f"{device_name}.csv"
    table = open_table(path, device=device_name, space=space.name, dtypes=dtypes, config=config,
                       description=description)
    t0 = time.perf_counter()
    n = profile_specs(table, list(specs.values()), config, path, progress=progress)
    if n == 0:
        table.write(path)  # records the space / dtypes even when everything was already measured
    if progress:
        print(f"{n} signature(s) measured in {time.perf_counter() - t0:.1f} s, {len(specs) - n} already in the "
              f"table; {len(table.entries)} rows in {path}")
    return path
