"""Profile layer signatures on this machine with onnxruntime, writing (or extending) a latency table.

Protocol (recorded in the table's metadata):

* each signature is built alone (``nas.nn.build.build_layer``), exported to ONNX (TorchScript exporter, opset 21,
  BN folded) and deployed at its bit-widths by ``nas.nn.quantize`` -- the quantizer ``nas export`` uses (int8:
  onnxruntime static QDQ, per-channel QInt8 weights, QUInt8 activations; w4: QInt4 weights; a32 with w<32:
  weight-only), calibrated with MinMax on a few seeded random inputs;
* one InferenceSession per model (all graph optimizations, ``intra_op_num_threads`` = ``threads``, sequential),
  input bound once with I/O binding, batch 1;
* signatures are measured in batches, *interleaved*: every round times each model of the batch in turn
  (warm-up, then ``repeats`` calls timed one by one);
* every timed call is *paired* with a call of a fixed reference kernel (``REFERENCE``, a small fp32
  inverted-residual block, run twice and timed the second time) made just before it; the sample is the ratio.
  A shared or virtualised CPU changes speed by 10-50 % within minutes; a ratio of two adjacent calls cancels
  most of that (``experiments/latency/latency_drift_check.py``: the same networks measured in four sessions spread by
  3.6-12 % per network in plain times, 2.4-2.8 % as ratios). The ratios become
  milliseconds through one constant per table, ``reference_ms`` (the reference's median time in the first
  batch, stored in the metadata), so later batches, resumed runs and ``nas lut validate`` all share one scale;
* value = median (or ``stat``) of the ratios minus the per-call overhead's (a 1-element Identity model timed the
  same way with each batch) and, for layers with quantized activations (a8), minus the
  Quantize/Dequantize boundary a layer alone pays and a quantized network does not (see ``boundary_timer``),
  times ``reference_ms``; spread = IQR;
* a value that comes out at or below 0 (the layer ran no longer than what is subtracted) is measured once
  more, in a batch after the others; if it stays non-positive the signature gets no row and is reported
  (:attr:`ProfileResult.dropped`): it is missing like any unmeasured one (a prediction needing it fails, or
  estimates it, flagged, with ``allow_estimate=True``). A table written here never holds a 0 or a negative
  latency;
* the table is rewritten atomically after every batch, so an interrupted run resumes where it stopped
  (a re-run measures only signatures not yet in the table);
* **precision boundaries** (``boundaries=True``, ``nas lut profile --boundaries``): for every tensor shape and
  every (writer bits, reader bits) pair of the space (``nas.latency.signatures.space_boundaries``), two probe
  layers (1x1 conv + BN + ReLU6, c -> c, at the writer's and at the reader's bits) are timed alone and chained,
  with the same subtraction rule as any layer; the boundary row is chained - alone - alone: what a network pays
  at that precision change (a Quantize where float meets int8, a Dequantize the other way, nothing between two
  fused int8 convs) beyond the two layers' rows. It is a signed correction, written whatever its sign. The
  metadata's ``boundaries`` then lists the space: predictions in it add the boundary rows (a missing one is an
  error naming it, like a missing layer).

The table records this host's fingerprint (``host_fingerprint``: CPU model, ISA features, cores, threads,
onnxruntime version, OS; :mod:`nas.latency.measure.host`), and an existing table is extended only on a host
with the same fingerprint.

torch's thread count is the caller's (the CLI sets 1 thread: exports are small, and idle torch threads
would only compete with onnxruntime's).

Runs unchanged on a Raspberry Pi (or any board) with onnxruntime + torch installed: profile there, copy the
table's ``.csv`` and ``.meta.yaml`` back into ``latency_tables/`` (or a directory on $NAS_LATENCY_TABLES).
"""
from __future__ import annotations

import datetime as _dt
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from nas.bits import check_bits
from nas.deprecation import renamed_arguments
from nas.errors import NasError
from nas.latency.measure.host import differences, fingerprint
from nas.latency.measure.timing import (REFERENCE, Timer, boundary_timer, build_onnx, check_stat, input_shape,
                                        measure_paired, output_shape, overhead_timer, precision, reference_timer,
                                        runtime_info, summarize, value)
from nas.latency.signatures import arch_layers, check_dtype, space_boundaries, space_signatures
from nas.latency.table import Entry, LatencyTable, new_meta, new_table_path, read_table
from nas.layers import LayerSpec, boundaries as layer_boundaries, input_bits, output_bits, plan

PROTOCOL_VERSION = 2  # 2: every timed call paired with the reference kernel (1: plain times, no reference_ms)
PROTOCOL = ("per signature: ONNX (opset 21, BN folded; quantized layers: nas.nn.quantize = ORT static QDQ, "
            "per-channel QInt8/QInt4 weights, QUInt8 activations, weight-only for a32, MinMax on seeded random "
            "inputs, unshared initializers), batch 1, I/O binding, interleaved rounds of warm-up + timed calls, "
            "each timed call paired with the reference kernel called just before it (sample = ratio); "
            "value = (median (or `stat`) ratio - per-call overhead ratio (1-element Identity model) - for quantized "
            "activations the Q/DQ boundary ratio (half Q+DQ at input + half at output shape)) * reference_ms, "
            "spread = IQR")
REMEASURED = "; re-measured (the first value was not positive)"


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

    def __post_init__(self):
        for name, low in (("threads", 1), ("warmup", 0), ("repeats", 1), ("rounds", 1), ("batch", 1),
                          ("calib_samples", 1)):
            if getattr(self, name) < low:
                raise NasError(f"{name} must be at least {low}, got {getattr(self, name)}", argument=name)
        check_stat(self.stat)


@dataclass(frozen=True)
class LayerValue:
    """One signature as measured in a batch (``ms`` may be <= 0: see :func:`profile_specs`)."""

    spec: LayerSpec
    ms: float
    iqr_ms: float
    n: int
    note: str


@dataclass
class ProfileResult:
    """What :func:`profile_space` did. ``str()`` / ``os.fspath()`` give the table's path, so the result can
    stand where a table path is expected."""

    path: Path
    measured: int  # signatures measured and written by this run
    already_present: int  # signatures the table already had
    rows: int  # rows in the table now
    seconds: float
    dropped: list[LayerSpec] = field(default_factory=list)  # non-positive twice: no row written

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)


# --------------------------------------------------------------------------------------------------------
# profiling a table
# --------------------------------------------------------------------------------------------------------
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
                           fix="profile into another device_name (or delete the table to re-measure it)")
        for key in ("runtime_version", "threads", "stat"):
            if str(table.meta.get(key, "median")) != str(info[key]):
                raise NasError(f"existing table was measured with {key}={table.meta.get(key, 'median')}, this run "
                               f"uses {info[key]}: mixing them would corrupt the table", where=str(path),
                               fix="use the same setting or another device_name")
        _check_same_host(table, path, config.threads)
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
                    protocol_version=PROTOCOL_VERSION, reference_kernel=REFERENCE.key,
                    host_fingerprint=fingerprint(config.threads))
    return LatencyTable(meta=meta)  # reference_ms is set by the first measured batch


def _check_same_host(table: LatencyTable, path: Path, threads: int) -> None:
    """An existing table is extended only on the host it was profiled on (its ``host_fingerprint``); a table
    profiled before fingerprints were recorded gets none (its older rows' host is unknown)."""
    recorded = table.meta.get("host_fingerprint")
    if recorded:
        diff = differences(recorded, fingerprint(threads))
        if diff:
            raise NasError(f"existing table was profiled on another host ({'; '.join(diff)}): mixing two hosts' "
                           "rows would corrupt it", where=str(path),
                           fix="profile into another device_name (`nas lut show` prints the table's host)")


def profile_specs(table: LatencyTable, specs: list[LayerSpec], config: ProfileConfig, path: Path, *,
                  progress: bool = True) -> tuple[int, list[LayerSpec]]:
    """Measure ``specs`` not yet in ``table``, saving it after every batch.

    A signature whose value comes out at or below 0 is not written; it is measured once more, with the
    others that did, in batches after the rest. What stays non-positive gets no row.
    Returns (signatures measured and written, signatures dropped).
    """
    from tqdm import tqdm

    todo = [s for s in specs if (0, s.signature) not in table.entries]
    todo.sort(key=lambda s: s.op == "boundary")  # layers first; a batch is all layers or all boundaries
    bar = tqdm(total=len(todo), desc=f"profile {table.device}", unit="sig", disable=not progress)
    retry: list[LayerSpec] = []
    dropped: list[LayerSpec] = []
    with tempfile.TemporaryDirectory(prefix="nas-lut-ref-") as run_dir:  # built once, timed with every batch
        reference = reference_timer(Path(run_dir), config.threads)
        overhead = overhead_timer(Path(run_dir), config.threads)
        for batch in _batches(todo, config.batch):
            retry += _measure_and_save(table, batch, config, path, reference, overhead, bar)
            bar.update(len(batch))
        for batch in _batches(retry, config.batch):  # once more, later than the first time
            dropped += _measure_and_save(table, batch, config, path, reference, overhead, bar, remeasured=True)
    bar.close()
    return len(todo) - len(dropped), dropped


def _quantized_ends(first: LayerSpec, last: LayerSpec | None = None) -> list[tuple[tuple, bool]]:
    """(shape, quantized?) of the input of a model (a lone layer, or a chain ``first`` .. ``last``) and of its
    output: whether the conv reading the input / writing the output has quantized activations (then the model
    alone pays a Q there, or a DQ)."""
    last = last or first
    return [(input_shape(first), input_bits(first)[1] < 32), (output_shape(last), output_bits(last)[1] < 32)]


def _batches(specs: list[LayerSpec], size: int):
    """Consecutive batches of at most ``size``, never mixing layers and boundary rows."""
    batch: list[LayerSpec] = []
    for s in specs:
        if batch and (len(batch) == size or (batch[0].op == "boundary") != (s.op == "boundary")):
            yield batch
            batch = []
        batch.append(s)
    if batch:
        yield batch


def measure_batch(batch: list[LayerSpec], config: ProfileConfig, reference: Timer, overhead_t: Timer,
                  reference_ms: float | None = None, *, bar=None) -> tuple[float, list[LayerValue]]:
    """Time one batch of signatures (interleaved rounds, every call paired with ``reference``).

    Returns the reference kernel's median time in this batch and each signature's value in ms of
    ``reference_ms`` (None: of this batch's reference time). Values are not clamped (may be <= 0)."""
    import torch

    from nas.nn.build import build_layer

    with tempfile.TemporaryDirectory(prefix="nas-lut-") as tmp:
        workdir = Path(tmp)
        timers = [overhead_t]
        shapes = sorted({sh for s in batch for sh, q in _quantized_ends(s) if q})
        timers += [boundary_timer(workdir, sh, config.threads) for sh in shapes]
        for i, spec in enumerate(batch):
            torch.manual_seed(config.seed)
            module = build_layer(spec)
            onnx_path = build_onnx(module, input_shape(spec), [spec], workdir, f"l{i}",
                                   calib_samples=config.calib_samples, seed=config.seed)
            timers.append(Timer(onnx_path, input_shape(spec), config.threads))
            if bar is not None:
                bar.set_postfix_str(spec.key[:40])
        paired = measure_paired(timers, reference, warmup=config.warmup, repeats=config.repeats,
                                rounds=config.rounds)
    batch_ref = value(paired.reference, "median")
    ref_ms = float(reference_ms or batch_ref)
    overhead = value(paired.ratios[0], config.stat)
    boundary = {sh: max(value(x, config.stat) - overhead, 0.0) for sh, x in zip(shapes, paired.ratios[1:])}
    speed = f"reference {batch_ref * 1000:.0f} us in this batch"
    out = []
    for spec, r in zip(batch, paired.ratios[1 + len(shapes):]):
        sub = overhead
        note = f"overhead {overhead * ref_ms * 1000:.1f} us"
        ends = [boundary[sh] / 2 for sh, q in _quantized_ends(spec) if q]
        if ends:  # quantized activations: a lone layer pays Q at its input and DQ at its output
            qdq = sum(ends)
            sub += qdq
            note += f" + Q/DQ boundary {qdq * ref_ms * 1000:.1f} us"
        ms, iqr, n = summarize(r, sub, ref_ms, config.stat)
        out.append(LayerValue(spec, ms, iqr, n, f"{note} subtracted; {speed}"))
    return batch_ref, out


def boundary_probes(spec: LayerSpec) -> tuple[LayerSpec, LayerSpec]:
    """The two probe layers of a boundary row: 1x1 conv + BN + ReLU6 (c -> c) writing the tensor at the writer's
    bits, and one reading it at the reader's bits."""
    kw = dict(op="conv", h=spec.h, w=spec.w, cin=spec.cin, cout=spec.cin, kernel=1, act="relu6")
    return (LayerSpec(name="probe.write", wbits=spec.wbits, abits=spec.abits, **kw),
            LayerSpec(name="probe.read", wbits=spec.dw_wbits, abits=spec.dw_abits, **kw))


def measure_boundaries(batch: list[LayerSpec], config: ProfileConfig, reference: Timer, overhead_t: Timer,
                       reference_ms: float | None = None) -> tuple[float, list[LayerValue]]:
    """Time boundary rows: each pair of probes alone and chained, in one interleaved batch; value = chained -
    alone - alone, each with the layer subtraction rule (overhead, half Q/DQ at a quantized input and output)."""
    import torch
    from torch import nn

    from nas.nn.build import build_layer

    class Chain(nn.Module):  # named like a Network (layers.<i>), so each probe is quantized at its own bits
        def __init__(self, specs):
            super().__init__()
            self.layers = nn.Sequential(*[build_layer(s) for s in specs])

        def forward(self, x):
            return self.layers(x)

    singles = list(dict.fromkeys(p for b in batch for p in boundary_probes(b)))
    models = [[s] for s in singles] + [list(boundary_probes(b)) for b in batch]
    with tempfile.TemporaryDirectory(prefix="nas-lut-b-") as tmp:
        workdir = Path(tmp)
        shapes = sorted({sh for s in singles for sh, q in _quantized_ends(s) if q})
        timers = [overhead_t] + [boundary_timer(workdir, sh, config.threads) for sh in shapes]
        for i, specs in enumerate(models):
            torch.manual_seed(config.seed)
            path = build_onnx(Chain(specs) if len(specs) > 1 else build_layer(specs[0]), input_shape(specs[0]),
                              specs if len(specs) > 1 else precision(specs[0]), workdir, f"b{i}",
                              calib_samples=config.calib_samples, seed=config.seed)
            timers.append(Timer(path, input_shape(specs[0]), config.threads))
        paired = measure_paired(timers, reference, warmup=config.warmup, repeats=config.repeats, rounds=config.rounds)
    batch_ref = value(paired.reference, "median")
    ref_ms = float(reference_ms or batch_ref)
    overhead = value(paired.ratios[0], config.stat)
    qdq = {sh: max(value(x, config.stat) - overhead, 0.0) for sh, x in zip(shapes, paired.ratios[1:])}

    def net(specs, ratios) -> float:  # ratio units, the layer subtraction rule at the model's two ends
        ends = _quantized_ends(specs[0], specs[-1])
        return value(ratios, config.stat) - overhead - sum(qdq[sh] / 2 for sh, q in ends if q)

    nets = [net(m, r) for m, r in zip(models, paired.ratios[1 + len(shapes):])]
    alone = dict(zip(singles, nets))
    out = []
    for b, chained in zip(batch, nets[len(singles):]):
        w, r = boundary_probes(b)
        out.append(LayerValue(b, (chained - alone[w] - alone[r]) * ref_ms, 0.0, config.repeats * config.rounds,
                              f"chained - alone - alone of two 1x1 probes; reference {batch_ref * 1000:.0f} us"))
    return batch_ref, out


def _measure_and_save(table: LatencyTable, batch: list[LayerSpec], config: ProfileConfig, path: Path,
                      reference: Timer, overhead: Timer, bar, *, remeasured: bool = False) -> list[LayerSpec]:
    """Measure one batch, add its positive values (boundary rows: any finite value) to ``table`` and save it;
    returns the others."""
    measure = measure_boundaries if batch[0].op == "boundary" else measure_batch
    kw = {} if batch[0].op == "boundary" else {"bar": bar}
    batch_ref, values = measure(batch, config, reference, overhead, table.meta.get("reference_ms"), **kw)
    if not table.meta.get("reference_ms"):
        table.meta["reference_ms"] = batch_ref
    bad = []
    for v in values:
        if not (math.isfinite(v.ms) and (v.ms > 0 or v.spec.op == "boundary")):
            bad.append(v.spec)
            continue
        table.add(v.spec.signature, Entry(v.ms, v.iqr_ms, v.n, note=v.note + (REMEASURED if remeasured else "")))
    table.meta["date"] = _dt.date.today().isoformat()
    if table.entries:  # a table without rows is not a table (read_table refuses it)
        table.write_merged(path)  # another profile of the same table may have saved rows meanwhile
    return bad


@renamed_arguments(space_name="space", archs_csv="archs")
def profile_space(space: str, device_name: str, *, dtypes: Iterable[str] = ("fp32",),
                  archs: str | None = None, config: ProfileConfig = ProfileConfig(),
                  out_dir: str | Path | None = None, description: str | None = None,
                  progress: bool = True, boundaries: bool = False) -> ProfileResult:
    """Measure what ``space`` (a name or a YAML path) needs, or the architectures in the CSV ``archs``, for every
    dtype, into the table ``<out_dir>/<device_name>.csv`` (default: the user's table folder,
    :func:`nas.paths.user_tables_dir`), created or extended. ``boundaries``: also the space's precision-boundary
    rows (needs dtype ``arch``; see the module docstring)."""
    from nas.space import load_space
    from nas.space.csv import read_archs

    space = load_space(space)
    dtypes = [check_dtype(d, argument="dtypes") for d in dtypes] or ["fp32"]
    path = new_table_path(device_name, out_dir=out_dir)
    chosen = read_archs(space, archs) if archs else None
    specs: dict[tuple, LayerSpec] = {}
    for d in dtypes:
        specs.update(arch_layers(chosen, space, d) if chosen is not None else space_signatures(space, d))
    if boundaries:
        if "arch" not in dtypes:
            raise NasError("precision boundaries are priced at each layer's own bits", argument="boundaries",
                           fix="add dtypes=['arch'], or leave out boundaries=True")
        if chosen is None:
            specs.update(space_boundaries(space))
        else:
            specs.update({b.signature: b for a in chosen for b in layer_boundaries(plan(a, space))})
    specs = {sig: spec for sig, spec in specs.items() if spec.computes}  # an identity skip runs nothing: 0 ms
    for spec in specs.values():
        for s in (boundary_probes(spec) if spec.op == "boundary" else [spec]):
            precision(s)  # fail before measuring anything
            check_bits(s.dw_wbits, s.dw_abits, where=s.key)
    table = open_table(path, device=device_name, space=space.name, dtypes=dtypes, config=config,
                       description=description)
    t0 = time.perf_counter()
    measured, dropped = profile_specs(table, list(specs.values()), config, path, progress=progress)
    if boundaries:  # from now on predictions in this space add boundary rows (a missing one is an error)
        table.meta["boundaries"] = sorted(set(table.boundary_spaces()) | {space.name})
        table.write_merged(path)
    if measured == 0 and not dropped:
        table.write_merged(path)  # records the space / dtypes even when everything was already measured
    return ProfileResult(path, measured, len(specs) - measured - len(dropped), len(table.entries),
                         time.perf_counter() - t0, dropped)
