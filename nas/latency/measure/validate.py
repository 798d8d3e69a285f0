"""End-to-end check of a table: build whole networks, measure them in onnxruntime with the profiler's protocol,
compare with the table's sum, and optionally fit + store a :class:`~nas.latency.model.Calibration`.

Whole networks are exported and quantized exactly like single layers (see :mod:`nas.latency.measure.profile`), then
timed with the profiler's protocol: interleaved rounds, every call paired with the reference kernel, value =
median ratio (or the table's ``stat``) minus the per-call overhead's, times the table's ``reference_ms`` -- so a
machine that runs slower today than when the table was profiled does not show up as table error.
Metrics: MAPE, share within ±10 %, Spearman rank correlation.
"""
from __future__ import annotations

import datetime as _dt
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nas.errors import NasError
from nas.latency.predict import Calibration, TableLatencyModel
from nas.latency.load import load as load_latency
from nas.latency.signatures import check_dtype, deploy
from nas.layers import plan
from nas.latency.measure.timing import Measured, measure_onnx
from nas.latency.metrics import metrics


# A session whose reference kernel ran more than this factor off its profiling-time speed gets a warning.
DRIFT_WARN = 1.15


@dataclass
class Report:
    device: str
    dtype: str
    threads: int
    rows: list[dict]
    raw: dict
    calibrated: dict | None = None
    calibration: Calibration | None = None
    calibrated_loo: dict | None = None  # calibration fitted without each architecture in turn
    stored_calibration: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        def line(name, m):
            return (f"  {name:<12} MAPE {m['mape_pct']:6.2f} %   within ±10 %: {m['within10_pct']:5.1f} %   "
                    f"Spearman {m['spearman']:.4f}   mean table/measured {m['mean_ratio']:.3f}")

        out = [f"validate {self.device} ({self.dtype}, {self.threads} thread(s)): {len(self.rows)} architectures "
               f"measured end to end in {self.seconds:.0f} s", line("table sum", self.raw)]
        if self.calibrated:
            out.append(line("calibrated", self.calibrated) + ("  (in-sample)" if self.stored_calibration else ""))
        if self.calibrated_loo:
            out.append(line("leave-1-out", self.calibrated_loo) + "  (each fitted without it)")
        if self.calibration is not None and self.stored_calibration:
            c = self.calibration
            loo = ", ".join(f"{k} {v:.2f} %" for k, v in c.metrics.get("loo_mape_pct", {}).items())
            out.append(f"  calibration stored ({c.form}, one-SE rule on leave-one-out MAPE: {loo}): measured = "
                       f"{c.offset_ms:.4f} + {c.scale:.4f} * table_sum {c.per_layer_ms:+.5f} * n_layers (n={c.n})")
        out += [f"  note: {n}" for n in self.notes]
        return "\n".join(out)



def measure_networks(archs, space, dtype: str, *, threads: int, rounds: int = 10, warmup: int = 5,
                     repeats: int = 8, seed: int = 0, stat: str = "median", reference_ms: float | None = None,
                     progress: bool = True) -> Measured:
    """Each whole network at ``dtype`` exported, deployed like the profiler's layers and timed (``measure_onnx``)."""
    import torch
    from tqdm import tqdm

    from nas.latency.measure.profile import build_onnx
    from nas.nn.build import build_model

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="nas-validate-") as tmp:
        workdir = Path(tmp)
        models = []
        for i, arch in enumerate(tqdm(archs, desc="export", unit="net", disable=not progress)):
            specs = [deploy(s, dtype) for s in plan(arch, space)]
            model = build_model(arch, space, seed=seed)
            shape = (1, *model.input_shape)
            models.append((build_onnx(model, shape, specs, workdir, f"n{i}", seed=seed), shape))  # per layer
        return measure_onnx(models, threads=threads, rounds=rounds, warmup=warmup, repeats=repeats, stat=stat,
                            reference_ms=reference_ms, progress=progress)


def validate(source: str, space_name: str, *, n: int = 50, dtype: str | None = None, threads: int | None = None,
             seed: int = 0, calibrate: bool = False, output: str | None = None, archs_csv: str | None = None,
             rounds: int = 10, progress: bool = True) -> Report:
    from nas.space import load_space

    space = load_space(space_name)
    dtype = check_dtype(dtype)
    raw_model = load_latency(source, dtype=dtype, calibrated=False)
    if not isinstance(raw_model, TableLatencyModel):  # e.g. a transferred model (`nas lut adapt`)
        if calibrate:
            raise NasError(f"'{raw_model.device}' is not a measured table and cannot be calibrated",
                           where="--calibrate", fix="adapt it again with these measurements added to --measured")
        raw_model.check_covers(space)
        table_meta = {"threads": getattr(raw_model, "threads", 1), "stat": "median",
                      "reference_ms": getattr(raw_model, "reference_ms", None)}
    else:
        table_meta = raw_model.table.meta
    if threads is None:
        threads = int(table_meta["threads"]) if str(table_meta["threads"]).isdigit() else 1
    if archs_csv:
        from nas.space.csv import read_archs

        archs = read_archs(space, archs_csv)
    else:
        if n < 2:
            raise NasError(f"--n must be at least 2, got {n}", where="--n")
        archs = space.sample_many(n, seed=seed)
    preds = [raw_model.predict(a, space) for a in archs]  # fails early, listing missing signatures
    stored = (TableLatencyModel(raw_model.table, dtype=dtype).calibration
              if isinstance(raw_model, TableLatencyModel) else None)
    t0 = time.perf_counter()
    stat = str(table_meta.get("stat", "median"))
    measured = measure_networks(archs, space, dtype, threads=threads, rounds=rounds, seed=seed, stat=stat,
                                reference_ms=table_meta.get("reference_ms"), progress=progress)
    seconds = time.perf_counter() - t0
    n_layers = [sum(s.computes for s in plan(a, space)) for a in archs]
    rows = []
    for a, p, (ms, iqr), k in zip(archs, preds, measured.values, n_layers):
        row = {"arch": space.format(a), "table_ms": p.latency_ms, "measured_ms": ms, "measured_iqr_ms": iqr,
               "n_layers": k, "rel_err_table": (p.latency_ms - ms) / ms}
        if stored is not None:
            row["calibrated_ms"] = stored.apply(p.latency_ms, k)
            row["rel_err_calibrated"] = (row["calibrated_ms"] - ms) / ms
        rows.append(row)
    meas = [r["measured_ms"] for r in rows]
    report = Report(raw_model.device, dtype, threads, rows, metrics([r["table_ms"] for r in rows], meas),
                    seconds=seconds)
    if stored is not None:
        report.calibrated = metrics([r["calibrated_ms"] for r in rows], meas)
        report.calibration = stored
    drifted = False
    if table_meta.get("reference_ms"):
        report.notes.append(measured.speed_note())
        drifted = abs(np.log(measured.slowdown)) > np.log(DRIFT_WARN)
    else:
        report.notes.append("the table records no reference_ms (not profiled by `nas lut profile` protocol 2): "
                            "whole-network times are plain milliseconds of this session")
    host = (table_meta.get("provenance") or {}).get("host")
    from nas.latency.measure.profile import runtime_info

    if host and host != runtime_info(threads)["host"]:
        report.notes.append(f"the table was profiled on '{host}', this is '{runtime_info(threads)['host']}'")
    elif not host:
        report.notes.append("the table was not profiled by `nas lut profile` on this machine: measured here, "
                            "the comparison says how well it transfers to this machine only")
    if calibrate:
        cal = Calibration.fit([r["table_ms"] for r in rows], n_layers, meas, dtype=dtype,
                              date=_dt.date.today().isoformat())
        loo = Calibration.loo_predict([r["table_ms"] for r in rows], n_layers, meas, cal.form)
        for r, p in zip(rows, loo):
            r["calibrated_loo_ms"] = float(p)
        cal.metrics.update(in_sample=metrics([cal.apply(r["table_ms"], r["n_layers"]) for r in rows], meas),
                           leave_one_out=metrics(loo, meas), raw=report.raw, threads=threads, seed=seed)
        table = raw_model.table
        table.meta.setdefault("calibration", {})[dtype] = cal.to_dict()
        table.write(table.csv_path)
        cal.metrics["reference_slowdown"] = measured.slowdown if table_meta.get("reference_ms") else None
        if drifted:
            report.notes.append(
                f"WARNING: the machine ran at {measured.slowdown:.2f}x its profiling-time speed during these "
                f"measurements; the reference kernel corrects most of that, not all, and this calibration may carry "
                f"the difference (the benchmark in the README saw a calibration fitted at 1.52x put 8 % of later "
                f"architectures within ±10 %, against 98 % for the plain table sum). Re-run --calibrate on an idle "
                f"machine, or check with `nas lut predict --no-calibration`")
        report.calibration, report.stored_calibration = cal, True
        report.calibrated = cal.metrics["in_sample"]
        report.calibrated_loo = cal.metrics["leave_one_out"]
    if output:
        import pandas as pd

        Path(output).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(output, index=False)
        report.notes.append(f"per-architecture results written to {output}")
    return report
