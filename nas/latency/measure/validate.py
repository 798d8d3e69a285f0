"""End-to-end check of a table: build whole networks, measure them in onnxruntime with the profiler's protocol,
compare with the table's sum, and optionally fit + store a :class:`~nas.latency.calibration.Calibration`.

Whole networks are exported and quantized exactly like single layers (see :mod:`nas.latency.measure.profile`), then
timed with the profiler's protocol: interleaved rounds, every call paired with the reference kernel, value =
median ratio (or the table's ``stat``) minus the per-call overhead's, times the table's ``reference_ms`` -- so a
machine that runs slower today than when the table was profiled does not show up as table error. The
per-architecture CSV (``output``) gives that reference time as ``reference_ms`` (the units of ``measured_ms``,
:mod:`nas.latency.measure.network_times`), so ``nas lut adapt --measured`` on it fits a model in the same units; a
transferred model is measured at its own ``reference_ms``.
Metrics: MAPE, share within ±10 %, Spearman rank correlation.

Calibration (``calibrate=True``) is fitted only onto a table measured on this host (its ``host_fingerprint``
matches this host's, :mod:`nas.latency.measure.host`): a published or shipped table, one profiled on another
host or one recording no fingerprint is refused before anything is measured (the fix names ``nas lut adapt
--measure-here``, which makes a new device instead). Such a table is the user's own (``nas lut profile`` wrote it
into the user's table folder or the ``--out-dir`` they chose); the calibration goes into its metadata under the
table's lock, merged with what other writers saved meanwhile, with this host's fingerprint. A table in a
read-only ``$NAS_LATENCY_TABLES`` folder is refused too.
"""
from __future__ import annotations

import datetime as _dt
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nas.deprecation import renamed_arguments
from nas.errors import NasError
from nas.fileio import check_table_output, write_table
from nas.latency.calibration import Calibration
from nas.latency.load import load as load_latency
from nas.latency.measure.host import HostMismatchWarning, fingerprint, host_match
from nas.latency.measure.timing import Measured, build_onnx, measure_onnx
from nas.latency.metrics import metrics
from nas.latency.predict import LatencyModel, LatencyPrediction, TableLatencyModel
from nas.latency.signatures import check_dtype, deploy
from nas.layers import plan


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
    from tqdm import tqdm

    from nas.nn.build import build_model

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


@renamed_arguments(name_or_path="device", space_name="space", archs_csv="archs")
def validate(device: str, space: str, *, n: int = 50, dtype: str | None = None,
             threads: int | None = None, seed: int = 0, calibrate: bool = False, output: str | None = None,
             archs: str | None = None, rounds: int = 10, progress: bool = True) -> Report:
    """Measure ``n`` random architectures of ``space`` (or those in the CSV ``archs``) end to end on this machine
    and compare them with the latency model ``device`` (a name or a path; its plain table sum, and a stored
    calibration if any).

    ``calibrate=True`` fits a :class:`Calibration` on these measurements and stores it in the table's metadata
    (only a table measured on this host, which is the user's own: :func:`check_calibratable`). ``threads`` defaults to the table's; ``output``: a per-architecture CSV."""
    from nas.space import load_space

    space = load_space(space)
    dtype = check_dtype(dtype)
    model, table_meta = _load_source(device, space, dtype, calibrate=calibrate)
    if output:  # before minutes of measuring; never over an input
        table = getattr(model, "table", None)
        check_table_output(output, reads={"archs": archs, "device": table and table.csv_path})
    if threads is None:
        threads = int(table_meta["threads"]) if str(table_meta["threads"]).isdigit() else 1
    if calibrate:
        check_calibratable(model.table, threads)
    chosen = _choose_archs(space, n=n, seed=seed, archs=archs, calibrate=calibrate)
    preds = [model.predict(a, space) for a in chosen]  # fails early, listing missing signatures
    stored = TableLatencyModel(model.table, dtype=dtype).calibration if isinstance(model, TableLatencyModel) else None
    t0 = time.perf_counter()
    measured = measure_networks(chosen, space, dtype, threads=threads, rounds=rounds, seed=seed,
                                stat=str(table_meta.get("stat", "median")),
                                reference_ms=table_meta.get("reference_ms"), progress=progress)
    report = _compare(model.device, dtype, threads, chosen, space, preds, measured, stored)
    report.seconds = time.perf_counter() - t0
    report.notes += _notes(measured, table_meta, threads)
    if calibrate:
        _calibrate(report, model.table, measured, table_meta, seed=seed)
    if output:
        import pandas as pd

        write_table(pd.DataFrame(report.rows), output)
        report.notes.append(f"per-architecture results written to {output}")
    return report


def _load_source(device: str, space, dtype: str, *, calibrate: bool) -> tuple[LatencyModel, dict]:
    """The uncalibrated model and the metadata that says how to measure against it (threads, stat,
    reference_ms; a transferred model has no reference_ms and cannot be calibrated)."""
    import warnings

    with warnings.catch_warnings():  # the report's notes say whether the table is this host's
        warnings.simplefilter("ignore", HostMismatchWarning)
        model = load_latency(device, dtype=dtype, calibrated=False)
    if isinstance(model, TableLatencyModel):
        return model, model.table.meta
    if calibrate:  # e.g. a transferred model (`nas lut adapt`)
        raise NasError(f"'{model.device}' is not a measured table and cannot be calibrated", argument="calibrate",
                       fix="adapt it again (`nas lut adapt`) with these measurements added to its measured CSV")
    model.check_covers(space)
    doc = getattr(model, "doc", {})
    return model, {"threads": getattr(model, "threads", 1), "stat": "median",
                   "reference_ms": getattr(model, "reference_ms", None), "kind": doc.get("kind"),
                   **{k: doc[k] for k in ("host_fingerprint", "host") if doc.get(k)}}


def check_calibratable(table, threads: int) -> None:
    """Calibration fits this host's whole-network times onto a table, so only a table measured on this host
    (its ``host_fingerprint`` matches) is calibrated, and only where the user's tables live: never a shipped or
    published table, nor one in a read-only ``$NAS_LATENCY_TABLES`` folder."""
    from nas.latency.table import SHIPPED_DIR, table_dirs
    from nas.paths import is_shipped, user_tables_dir

    path = Path(table.csv_path)
    adapt = (f"measure this host's own table with `nas lut profile` and calibrate that, or adapt '{table.device}' to "
             f"this host: `nas lut adapt --from {table.device} --measure-here 20` (a new device; nothing is written "
             f"into '{table.device}')")
    if is_shipped(path):
        raise NasError(f"'{table.device}' is a shipped table: shipped tables are never written, and its host is not "
                       "this one", argument="calibrate", fix=adapt)
    status, diff = host_match(table.meta, fingerprint(threads))
    if status != "yes":
        why = {"no": f"was profiled on another host ({'; '.join(diff)})",
               "n/a": "describes another device" + (f" ({'; '.join(diff)})" if diff else ""),
               }.get(status, "records no host fingerprint, so nothing says it was measured on this host")
        raise NasError(f"table '{table.device}' {why}: calibrating it here would store this host's times in it",
                       argument="calibrate", fix=adapt)
    read_only = [d for d in table_dirs() if d not in (user_tables_dir(), SHIPPED_DIR)]
    if any(path.resolve().is_relative_to(d.resolve()) for d in read_only):
        raise NasError("the table is in a read-only folder on $NAS_LATENCY_TABLES", where=str(path),
                       fix="copy its .csv and .meta.yaml into your table folder (`nas --tables-dir`) and calibrate "
                           "that copy")


def _choose_archs(space, *, n: int, seed: int, archs: str | None, calibrate: bool) -> list:
    if archs:
        from nas.space.csv import read_archs

        chosen = read_archs(space, archs)
    else:
        if n < 2:
            raise NasError(f"must be at least 2, got {n}", argument="n")
        chosen = space.sample_many(n, seed=seed)
    if calibrate and len(chosen) < 2:
        raise NasError(f"calibration needs at least 2 architectures, got {len(chosen)}", argument="calibrate",
                       fix="measure 10 or more: n=10, or 10 or more rows in archs=FILE.csv")
    return chosen


def _compare(device: str, dtype: str, threads: int, archs, space, preds: list[LatencyPrediction],
             measured: Measured, stored: Calibration | None) -> Report:
    """One row per architecture (table sum, measured, relative error; stored calibration if any) + metrics."""
    rows = []
    failures = measured.failures or [None] * len(measured.values)
    for a, p, (ms, iqr), why in zip(archs, preds, measured.values, failures):
        k = sum(s.computes for s in plan(a, space))
        row = {"arch": space.format(a), "table_ms": p.latency_ms, "measured_ms": ms, "measured_iqr_ms": iqr,
               "n_layers": k, "rel_err_table": math.nan if why else (p.latency_ms - ms) / ms,
               "reference_ms": measured.reference_ms}  # the units of measured_ms (nas.latency.measure.network_times)
        if stored is not None:
            row["calibrated_ms"] = stored.apply(p.latency_ms, k)
            row["rel_err_calibrated"] = math.nan if why else (row["calibrated_ms"] - ms) / ms
        if why:
            row["measurement_error"] = why
        rows.append(row)
    timed = _timed(rows)
    meas = [r["measured_ms"] for r in timed]
    report = Report(device, dtype, threads, rows, metrics([r["table_ms"] for r in timed], meas))
    if len(timed) < len(rows):
        report.notes.append(f"{len(rows) - len(timed)} of {len(rows)} architecture(s) have no measured time and are "
                            f"left out of every metric ({next(w for w in failures if w)}): "
                            + ", ".join(r["arch"] for r in rows if "measurement_error" in r))
    if stored is not None:
        report.calibrated = metrics([r["calibrated_ms"] for r in timed], meas)
        report.calibration = stored
    return report


def _timed(rows: list[dict]) -> list[dict]:
    """The rows with a measured time; an error when none has one (there is nothing to compare)."""
    timed = [r for r in rows if "measurement_error" not in r]
    if not timed:
        raise NasError(f"none of the {len(rows)} architecture(s) could be timed: {rows[0]['measurement_error']}",
                       fix="validate larger networks, or with more rounds (rounds=20) on an idle machine")
    return timed


def _notes(measured: Measured, table_meta: dict, threads: int) -> list[str]:
    """How this session's speed and host compare with the table's."""
    if table_meta.get("reference_ms"):
        notes = [measured.speed_note()]
    else:
        notes = ["the table records no reference_ms (not profiled by `nas lut profile` protocol 2): "
                 "whole-network times are plain milliseconds of this session"]
    status, diff = host_match(table_meta, fingerprint(threads))
    if status == "no":
        notes.append(f"the table was measured on another host ({'; '.join(diff)}): the comparison says how well "
                     "it transfers to this host")
    elif status != "yes":
        host = (table_meta.get("provenance") or {}).get("host") or table_meta.get("host")
        notes.append((f"the table records its host as '{host}' without a fingerprint" if host else
                      "the table was not measured on this host") +
                     ": measured here, the comparison says how well it transfers to this host only")
    return notes


def store_calibration(table, cal: Calibration) -> None:
    """Write ``cal`` into the table's metadata on disk (the user's own table, :func:`check_calibratable`), under
    the table's lock and merged with what is on disk then (rows a concurrent `nas lut profile` saved, other
    dtypes' calibrations), so nothing another writer saved is lost."""
    from nas.latency.table import locked, read_table

    with locked(Path(table.csv_path)):
        disk = read_table(table.csv_path)
        disk.meta.setdefault("calibration", {})[cal.dtype] = cal.to_dict()
        disk.write(table.csv_path)
    table.meta["calibration"] = disk.meta["calibration"]


def _calibrate(report: Report, table, measured: Measured, table_meta: dict, *, seed: int) -> None:
    """Fit a Calibration on the report's rows, store it (with every metric) in the table's metadata on disk,
    and add it, its leave-one-out metrics and a drift warning to the report."""
    rows = _timed(report.rows)  # a network without a measured time (Measured.failures) is not fitted on
    if len(rows) < 2:
        raise NasError(f"calibration needs at least 2 measured architectures, {len(rows)} of {len(report.rows)} "
                       "could be timed", argument="calibrate", fix="measure more architectures (n=10 or more)")
    table_ms, n_layers, meas = ([r[k] for r in rows] for k in ("table_ms", "n_layers", "measured_ms"))
    try:
        cal = Calibration.fit(table_ms, n_layers, meas, dtype=report.dtype, date=_dt.date.today().isoformat())
    except NasError as exc:  # its measured_ms are this call's measurements: what asked for the fit is calibrate
        raise NasError(exc.problem, argument="calibrate", fix=exc.fix) from None
    loo = Calibration.loo_predict(table_ms, n_layers, meas, cal.form)
    for r, p in zip(rows, loo):
        r["calibrated_loo_ms"] = float(p)
    slowdown = measured.slowdown if table_meta.get("reference_ms") else None
    cal.metrics.update(in_sample=metrics([cal.apply(t, k) for t, k in zip(table_ms, n_layers)], meas),
                       leave_one_out=metrics(loo, meas), raw=report.raw, threads=report.threads, seed=seed,
                       reference_slowdown=slowdown)
    cal.host_fingerprint = fingerprint(report.threads)
    store_calibration(table, cal)  # after every metric is in: what is on disk is what the report shows
    if slowdown is not None and abs(np.log(slowdown)) > np.log(DRIFT_WARN):
        report.notes.append(
            f"WARNING: the machine ran at {slowdown:.2f}x its profiling-time speed during these "
            f"measurements; the reference kernel corrects most of that, not all, and this calibration may carry "
            f"the difference (the benchmark in the README saw a calibration fitted at 1.52x put 8 % of later "
            f"architectures within ±10 %, against 98 % for the plain table sum). Re-run --calibrate on an idle "
            f"machine, or check with `nas lut predict --no-calibration`")
    report.calibration, report.stored_calibration = cal, True
    report.calibrated = cal.metrics["in_sample"]
    report.calibrated_loo = cal.metrics["leave_one_out"]
