"""Timing ONNX models on this machine: the one protocol behind profiling (:mod:`.profile`), validation
(:mod:`.validate`) and ``nas export``.

* a model is exported and deployed at its bit-widths (:func:`build_onnx`), run in one InferenceSession with its
  input bound once (:class:`Timer`), batch 1;
* models are timed in interleaved rounds, every timed call paired with a call of the fixed reference kernel
  :data:`REFERENCE` just before it (:func:`measure_paired`: the sample is the ratio, which cancels most of a
  shared machine's speed changes);
* a value is a statistic of the ratios (:func:`value`) minus the per-call overhead's (:func:`overhead_timer`),
  times a reference time in ms (:func:`summarize`); :func:`measure_onnx` does all of it for whole networks.

Why this protocol, with the figures behind it: :mod:`nas.latency.measure.profile`. torch and onnxruntime are
imported inside the functions that need them.
"""
from __future__ import annotations

import math
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nas.bits import check_bits, parse_label
from nas.errors import NasError
from nas.layers import LayerSpec
from nas.nn.onnx import OPSET, export_onnx


# The reference kernel: fixed for every table and every machine (changing it changes the protocol version).
REFERENCE = LayerSpec(name="reference", op="ir", h=16, w=16, cin=32, cout=32, kernel=3, stride=1, expand=4,
                      mid=128, act="relu6", expand_conv=True, residual=True)


def input_shape(spec: LayerSpec) -> tuple[int, int, int, int]:
    """The NCHW input a layer is timed with, batch 1 (a linear layer: the pooled 1x1 features)."""
    return (1, spec.cin, 1, 1) if spec.op == "linear" else (1, spec.cin, spec.h, spec.w)


def output_shape(spec: LayerSpec) -> tuple[int, int, int, int]:
    ho, wo = spec.out_hw
    return (1, spec.cout, ho, wo)


def precision(spec: LayerSpec) -> str:
    """How a layer is deployed (``nas.nn.quantize``): 'fp32' (w32a32), 'int8' (w8a8) or 'w<W>a<A>' (w4a8, w8a32, ...)."""
    return check_bits(spec.wbits, spec.abits, where=spec.key).label


# --------------------------------------------------------------------------------------------------------
# building and timing models
# --------------------------------------------------------------------------------------------------------
def calibration_inputs(input_shape: tuple[int, ...], samples: int, seed: int) -> list[np.ndarray]:
    """Seeded standard-normal inputs: a lone layer has no real data to calibrate on."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(input_shape).astype(np.float32) for _ in range(samples)]


def build_onnx(module, input_shape: tuple[int, ...], prec, workdir: Path, stem: str, *,
               calib_samples: int = 4, seed: int = 0) -> Path:
    """Export ``module`` and deploy it with ``nas.nn.quantize`` at ``prec``: one precision label for the whole graph,
    or the list of LayerSpecs of a Network (each ``layers.<i>`` at its own bit-widths)."""
    from nas.nn import quantize as Q

    path = workdir / f"{stem}.onnx"
    export_onnx(module, path, batch=input_shape[0], input_shape=tuple(input_shape[1:]))
    if isinstance(prec, str):
        if prec == "fp32":
            return path
        layers = parse_label(prec)
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
        from nas.nn.onnx import ort_session

        self.session = ort_session(onnx_path, threads=threads, optimize=optimize)
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

    from nas.nn.build import build_layer

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


# --------------------------------------------------------------------------------------------------------
# values from paired ratios
# --------------------------------------------------------------------------------------------------------
STATS = {"median": 50, "p10": 10, "min": 0}


def check_stat(stat: str) -> str:
    if stat not in STATS:
        raise NasError(f"unknown statistic '{stat}'", argument="stat", fix=f"use one of {', '.join(STATS)}")
    return stat


def value(samples, stat: str = "median") -> float:
    """The ``stat`` (:data:`STATS`: median, p10 or min) of ``samples``."""
    check_stat(stat)
    return float(np.percentile(np.asarray(samples), STATS[stat]))


def summarize(ratios: list[float], sub_ratio: float, reference_ms: float, stat: str = "median"
              ) -> tuple[float, float, int]:
    """(ms, IQR ms, count) from paired ratios: (``stat`` ratio - ``sub_ratio``) * ``reference_ms``, where
    ``sub_ratio`` is what is subtracted (per-call overhead, Q/DQ boundary) in the same ratio units.

    The value is *not* clamped: a layer that runs no longer than what is subtracted comes out at or below 0,
    and the caller decides (the profiler re-measures it and never writes such a value)."""
    arr = np.asarray(ratios)
    q1, q3 = np.percentile(arr, [25, 75])
    return (value(arr, stat) - sub_ratio) * reference_ms, float(q3 - q1) * reference_ms, len(arr)


# --------------------------------------------------------------------------------------------------------
# whole networks (validation, export)
# --------------------------------------------------------------------------------------------------------
def runtime_info(threads: int) -> dict:
    """Runtime, its version, threads and a host description: what a table's metadata records."""
    import onnxruntime as ort

    return {"runtime": "onnxruntime (CPUExecutionProvider)", "runtime_version": ort.__version__,
            "threads": threads, "host": f"{platform.machine()} {platform.processor() or ''} "
                                        f"{os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"}


# Why a whole network has no measured value (Measured.failures): the only way a measurement fails.
TOO_FAST = ("measured at or below the per-call overhead, and again when re-measured: the network runs too fast (or "
            "the machine too unevenly) to time it against the overhead; its time is unknown, not 0")


@dataclass
class Measured:
    """Whole-network measurements: (ms, IQR ms) per network, and the reference kernel's speed.

    A network whose value came out at or below the per-call overhead is measured again; if it stays there, its
    value is NaN (never 0) and ``failures`` says why (None for a network with a value)."""

    values: list[tuple[float, float]]
    reference_ms: float  # the constant turning ratios into ms (the table's, or this session's median)
    session_reference_ms: float  # the reference kernel's median time in this session
    failures: list[str | None] = field(default_factory=list)
    remeasured: list[int] = field(default_factory=list)  # networks measured twice (their first value was <= 0)
    # per network, its ms in each interleaved round (empty for a failure): two networks' values of one round ran
    # under the same machine state, so their per-round ratios give a paired interval for a speed-up
    rounds_ms: list[list[float]] = field(default_factory=list)

    @property
    def slowdown(self) -> float:
        """How much slower the reference kernel ran in this session than ``reference_ms`` says."""
        return self.session_reference_ms / self.reference_ms

    def speed_note(self) -> str:
        s = self.slowdown
        state = ("as fast as" if abs(s - 1) < 0.02 else f"{s:.2f}x slower than" if s > 1
                 else f"{1 / s:.2f}x faster than")
        return (f"the reference kernel ran {state} when the table was profiled "
                f"({self.session_reference_ms * 1000:.0f} vs {self.reference_ms * 1000:.0f} us); "
                f"whole-network times are expressed at the table's speed")


def measure_onnx(models, *, threads: int, rounds: int = 10, warmup: int = 5, repeats: int = 8,
                 stat: str = "median", reference_ms: float | None = None, progress: bool = True) -> Measured:
    """Time each (onnx path, input shape) whole with the profiler's protocol: interleaved rounds, batch 1,
    I/O binding, every call paired with the reference kernel, per-call overhead subtracted.

    ``reference_ms``: a table's constant (its metadata ``reference_ms``), so the values are on that table's
    scale whatever speed the machine runs at now; None = this session's median reference time (plain
    milliseconds of this session, drift within the session removed). ``nas export`` times its files with it.
    A network that comes out at or below the overhead is measured again (the same rounds, with the overhead);
    if it stays there its value is NaN and ``Measured.failures`` says why (:data:`TOO_FAST`), never 0 ms.
    """
    with tempfile.TemporaryDirectory(prefix="nas-measure-") as tmp:
        reference = reference_timer(Path(tmp), threads)
        overhead = overhead_timer(Path(tmp), threads)
        timers = [Timer(Path(p), tuple(sh), threads) for p, sh in models]
        kw = dict(rounds=rounds, warmup=warmup, repeats=repeats, progress=progress)
        paired = _rounds([overhead, *timers], reference, **kw)
        session_ref = value(paired.reference, "median")
        ref_ms = float(reference_ms) if reference_ms else session_ref
        values = _values(paired, ref_ms, stat)
        per_round = _per_round(paired, ref_ms, stat, repeats)
        again = [i for i, (ms, _) in enumerate(values) if not ms > 0]
        if again:
            redo = _rounds([overhead, *(timers[i] for i in again)], reference, **kw)
            for i, v, r in zip(again, _values(redo, ref_ms, stat), _per_round(redo, ref_ms, stat, repeats)):
                values[i], per_round[i] = v, r
    failures = [None if ms > 0 else TOO_FAST for ms, _ in values]
    values = [(ms, iqr) if why is None else (math.nan, math.nan) for (ms, iqr), why in zip(values, failures)]
    per_round = [r if why is None else [] for r, why in zip(per_round, failures)]
    return Measured(values, ref_ms, session_ref, failures, again, per_round)


def _rounds(timers: list[Timer], reference: Timer, *, rounds: int, warmup: int, repeats: int,
            progress: bool) -> Paired:
    """``rounds`` interleaved rounds of ``measure_paired`` (a progress bar over rounds)."""
    from tqdm import tqdm

    paired: Paired | None = None
    for r in tqdm(range(rounds), desc="measure", unit="round", disable=not progress, leave=False):
        one = measure_paired(timers, reference, warmup=warmup, repeats=repeats, rounds=1, first_round=r == 0)
        paired = one if paired is None else paired.extend(one)
    return paired


def _per_round(paired: Paired, ref_ms: float, stat: str, repeats: int) -> list[list[float]]:
    """Per timer after the first, one ms value per interleaved round: the round's ``repeats`` ratios' ``stat``
    minus the whole session's per-call overhead (the first timer), unclamped."""
    overhead = value(paired.ratios[0], stat)
    return [[(value(r[k:k + repeats], stat) - overhead) * ref_ms for k in range(0, len(r), repeats)]
            for r in paired.ratios[1:]]


def _values(paired: Paired, ref_ms: float, stat: str) -> list[tuple[float, float]]:
    """(ms, IQR ms) of every timer after the first (the per-call overhead, subtracted from each), unclamped."""
    overhead = value(paired.ratios[0], stat)
    return [summarize(r, overhead, ref_ms, stat)[:2] for r in paired.ratios[1:]]
