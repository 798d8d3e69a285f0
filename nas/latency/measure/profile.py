"""Profile layer signatures on this machine with onnxruntime, writing (or extending) a latency table.

Protocol (recorded in the table's metadata):

* each signature is built alone (``nas.model.build_layer``), exported to ONNX (TorchScript exporter, opset 21,
  BN folded) and deployed at its bit-widths by ``nas.nn.quantize`` -- the quantizer ``nas export`` uses (int8:
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
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable


from nas.errors import NasError
from nas.layers import LayerSpec
from nas.latency.signatures import arch_layers, check_dtype, space_signatures
from nas.latency.table import SHIPPED_DIR, Entry, LatencyTable, new_meta, read_table
from nas.latency.measure.timing import REFERENCE, Timer, boundary_timer, build_onnx, input_shape, measure_paired, output_shape, overhead_timer, precision, reference_timer, runtime_info, summarize, value

PROTOCOL_VERSION = 2  # 2: every timed call paired with the reference kernel (1: plain times, no reference_ms)
PROTOCOL = ("per signature: ONNX (opset 21, BN folded; quantized layers: nas.nn.quantize = ORT static QDQ, "
            "per-channel QInt8/QInt4 weights, QUInt8 activations, weight-only for a32, MinMax on seeded random "
            "inputs, unshared initializers), batch 1, I/O binding, interleaved rounds of warm-up + timed calls, "
            "each timed call paired with the reference kernel called just before it (sample = ratio); "
            "value = (median (or `stat`) ratio - per-call overhead ratio (1-element Identity model) - for quantized "
            "activations the Q/DQ boundary ratio (half Q+DQ at input + half at output shape)) * reference_ms, "
            "spread = IQR")


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

    from nas.nn.build import build_layer

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
        from nas.space.csv import read_archs

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
