"""Latency tables transferred to a new device from a handful of whole-network measurements.

Users own devices no table covers, and often can time only whole networks. The transferred model reuses what
the existing tables know about *which layers are expensive* and fits how the new device weighs it, from k
measured architectures (any k >= 3; 10-20 is a good start, ``nas lut suggest`` says which).

Model (additive over layers, so a prediction keeps its per-layer breakdown)::

    latency_ms(arch) = network_ms + Σ_layers Σ_f coef_f * feature_f(layer)

with per-layer features ``table:<source>`` (the layer's latency in each source table, ms), ``macs_M``,
``params_M``, ``kernels`` (conv / linear / pool / residual-add kernels the layer launches, and the channel shuffle
after a grouped expand conv: what dominates on batch-1 GPUs), ``activations_M`` (elements read + written: memory
traffic) and, from k >= :data:`MIN_EXTRA` measurements, ``dw_macs_M``
(the depth-wise conv's MACs: memory-bound, dearer per MAC on phones and GPUs than on some CPUs), kept only where
10-fold cross-validation on the measurements prefers it (:func:`fit_selected`; a tie keeps it out).
Coefficients are non-negative (a layer never makes a network faster) and fitted by non-negative least squares
on *relative* error, ``Σ ((pred - measured) / measured)²`` (scipy ``nnls``; features scaled to mean 1 first).
Non-negativity is the regulariser: with few points NNLS sets most coefficients to 0. (Choosing between this
and "best single table × factor" by leave-one-out error was tried: on the development devices it lost rank
correlation at every k, since LOO on 5-20 points is too noisy to choose with, so the baseline is reported only.)

Leave one device out on HELP's FBNet measurements at k = 10 (experiments/latency/latency_transfer_benchmark.py) the
shuffle count raised mean Spearman 0.873 -> 0.882 (Titan X batch 1 0.961 -> 0.991, its latency being ~85 % kernel
launches). ``dw_macs_M`` offered at every k lifted a Pixel 3-like device 0.970 -> 0.995 at k = 10, but on a real
10-network CPU run cross-validation took it in on noise (held-out Spearman 0.70 -> 0.38), hence k >= 20, as for
the corrections below. The features a model was fitted with are its ``feature_version`` (model.py). From version 3
``layers`` (1 per computing layer) is no longer fitted: it is the kernel count's near-collinear twin, and on 5-10
points NNLS traded one for the other on noise (k = 10 Jetson TX2-like table target 0.653 -> 0.675, k = 5 Titan X
0.900 -> 0.910, nothing else moved by more than 0.005).

Per-layer corrections (k >= 20): with enough measurements, each layer signature may deviate from what the
features say, as in a fitted table (:mod:`nas.latency.fitted`): the per-layer predictions of the fit above
are the prior, deviations are ridge-penalised relative to it, and λ is chosen by 5-fold cross-validation among
a grid that includes "no correction" (so a noisy device, e.g. a phone timed in whole ms, keeps none). Stored as
``corrections`` (layer key -> ms added) and ``network_correction_ms``. On the development devices at k = 50 this
raised mean Spearman 0.890 -> 0.897 (Xeon 0.943 -> 0.958, Titan X 0.971 -> 0.979, S7 unchanged); at k = 10
cross-validation on so few points chose worse than none (0.873 -> 0.867), hence the k >= 20 rule.

Quality: leave-one-out (LOO) predictions of the k measurements give MAPE, share within ±10 % and Spearman, next
to the same for the baseline "best single source table × a fitted factor" (table chosen by LOO MAPE); warnings
say when the fit is unreliable (few points, too uniform measurements, high LOO error, baseline better).

On disk: one YAML file (``<name>.transfer.yaml``): kind, device, space, dtype, date, k, method, coefficients,
sources (device name, table path, content hash: loading checks the hash), the quality report and the k
measurements themselves. No pickles. Files in ``latency_tables/`` or ``$NAS_LATENCY_TABLES`` are found by name.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nas.deprecation import renamed_arguments
from nas.errors import NasError
from nas.latency.measure.network_times import MIN_K, origin, read_measurements  # noqa: F401 (MIN_K re-exported)
from nas.latency.metrics import loo_predictions, plain_metrics
from nas.latency.predict import TableLatencyModel
from nas.latency.signatures import check_dtype
from nas.latency.table import SHIPPED_DIR, list_devices, read_table
from nas.latency.transfer.precision import PARTS, parts_seen, split
from nas.latency.transfer.model import (EXTRA_FEATURES, FEATURE_VERSION, KIND, NETWORK_FEATURE, SCHEMA_VERSION,
                                        UNFITTED_FEATURES, Features, TransferredLatencyModel)
from nas.space import SearchSpace

MODEL_TEXT = ("latency_ms = network_ms + sum over layers of sum_f coef_f * feature_f(layer); features: each source "
              "table's layer latency (table:<device>), macs_M, params_M, kernels, activations_M and, from 20 "
              "measurements where cross-validation prefers it, dw_macs_M; non-negative least squares on relative "
              "error")
FEATURE_DOC = {
    "table:<device>": "the layer's latency in that source table (ms)",
    "macs_M": "multiply-accumulates of conv + linear, millions",
    "params_M": "parameters, millions",
    "kernels": "conv / linear / pool / residual-add / channel-shuffle kernels the layer runs",
    "activations_M": "activation elements read + written by its convs, millions",
    "layers": "1 if the layer computes anything (fitted only by feature versions 1 and 2)",
    "dw_macs_M": "depth-wise conv multiply-accumulates, millions (from 20 measurements, where cross-validation prefers it)",
    "network_ms": "constant per network (call overhead)",
}


# --------------------------------------------------------------------------------------------------------
# source tables
# --------------------------------------------------------------------------------------------------------
def default_sources(space: SearchSpace, dtype: str | None = None) -> list[str]:
    """Every shipped or profiled table (not transferred models) that lists ``space`` and covers it."""
    out = []
    for name, path in list_devices().items():
        try:
            table = read_table(path)
        except NasError:
            continue
        if space.name in table.meta.get("spaces", []):
            model = TableLatencyModel(table, dtype=dtype, use_calibration=False)
            if not model.missing_for(space):
                out.append(name)
    return out


def load_sources(names, space: SearchSpace, dtype: str | None) -> list[TableLatencyModel]:
    """The named tables (the ``sources`` argument of adapt / suggest), each checked to cover ``space``."""
    sources = []
    for name in names:
        try:
            table = read_table(name)
        except NasError as exc:  # an unknown name is a bad `sources` entry
            if exc.argument != "device":
                raise
            raise NasError(exc.problem, argument="sources", fix=exc.fix) from None
        model = TableLatencyModel(table, dtype=dtype, use_calibration=False)
        model.check_covers(space)  # space mismatch: names what is missing
        sources.append(model)
    return sources


# --------------------------------------------------------------------------------------------------------
# fitting
# --------------------------------------------------------------------------------------------------------
def fit_nnls(F: np.ndarray, y: np.ndarray, cols=None) -> np.ndarray:
    """Non-negative coefficients minimising Σ((F c - y) / y)² over ``cols`` (others 0)."""
    from scipy.optimize import nnls

    cols = list(range(F.shape[1])) if cols is None else list(cols)
    scale = np.abs(F[:, cols]).mean(axis=0)
    scale[scale == 0] = 1.0
    a = F[:, cols] / scale / y[:, None]
    c, _ = nnls(a, np.ones_like(y), maxiter=50 * len(cols))
    coef = np.zeros(F.shape[1])
    coef[cols] = c / scale
    return coef


def fit_scaled(F: np.ndarray, y: np.ndarray, col: int) -> np.ndarray:
    """Baseline: one column × a factor, least squares on relative error."""
    x = F[:, col] / y
    coef = np.zeros(F.shape[1])
    coef[col] = float(np.sum(x) / np.sum(x * x)) if np.any(x) else 0.0
    return coef


MIN_EXTRA = 20  # measurements needed before the extra features are tried (as for corrections)
SELECT_FOLDS = 10  # cross-validation folds that choose them


def fit_selected(F: np.ndarray, y: np.ndarray, names: list[str], *, select: bool = True,
                 version: int = FEATURE_VERSION) -> tuple[np.ndarray, dict]:
    """:func:`fit_nnls` without the :data:`EXTRA_FEATURES` columns, or, when ``select``, with them where their
    cross-validated MAPE on (F, y) is lower (a tie keeps them out; :data:`SELECT_FOLDS` seeded folds); returns the
    coefficients and {} or {cv_mape_pct, chosen}. From feature ``version`` 3 the :data:`UNFITTED_FEATURES` columns
    are never used (coefficient 0)."""
    dropped = [j for j, n in enumerate(names) if n in UNFITTED_FEATURES] if version >= 3 else []
    extra = [j for j, n in enumerate(names) if n in EXTRA_FEATURES]
    base = [j for j in range(F.shape[1]) if j not in extra and j not in dropped]
    if not extra or not select:
        return fit_nnls(F, y, base), {}
    folds = np.random.default_rng(0).permutation(len(y)) % SELECT_FOLDS
    err = {}
    for label, cols in (("without", base), ("with", base + extra)):
        pred = np.empty_like(y)
        for f in np.unique(folds):
            pred[folds == f] = F[folds == f] @ fit_nnls(F[folds != f], y[folds != f], cols)
        err[label] = float(np.mean(np.abs(pred - y) / y) * 100)
    chosen = "with" if err["with"] < err["without"] * (1 - 1e-6) - 1e-9 else "without"  # a tie (rounding): out
    return (fit_nnls(F, y, base + extra if chosen == "with" else base),
            {"cv_mape_pct": {k: round(v, 4) for k, v in err.items()}, "chosen": chosen})


@dataclass
class Fit:
    method: str  # "nnls"
    coef: np.ndarray
    quality: dict = field(default_factory=dict)


MIN_CORRECT = 20  # measurements needed before per-layer corrections are tried
CORRECTION_LAMBDAS = (3e-4, 3e-3, 3e-2, 3e-1)  # per measurement; "no correction" is always a candidate


def fit_corrections(features: Features, archs, y: np.ndarray, coef: np.ndarray, *, seed: int = 0) -> dict:
    """Per-layer corrections to the fitted model (see the module docstring): {} when k < MIN_CORRECT; else the
    cross-validation report, and when it prefers corrections {corrections: {key: ms}, network_correction_ms}."""
    from nas.latency.fitted import _solve

    k = len(y)
    if k < MIN_CORRECT:
        return {}
    A, keys, rows = _layer_design(features, archs)
    F = np.vstack([features.network(a) for a in archs])

    names = features.names + [NETWORK_FEATURE]

    def predictor(train: np.ndarray, lam: float | None):
        c = fit_selected(F[train], y[train], names, version=features.version)[0]
        if lam is None:
            return lambda idx: F[idx] @ c
        x, const = _solve(A[train], y[train], np.maximum(rows @ c[:-1], 1e-6), max(float(c[-1]), 1e-6),
                          lam * int(train.sum()))
        return lambda idx: A[idx] @ x + const

    folds = np.random.default_rng(seed).permutation(k) % 5
    cv = {}
    for lam in (None,) + CORRECTION_LAMBDAS:
        err = [np.abs(predictor(folds != f, lam)(folds == f) / y[folds == f] - 1) for f in range(5)]
        cv[lam] = float(np.mean(np.concatenate(err)) * 100)
    best = min(cv, key=cv.get)
    report = {"cv_mape_pct": {("none" if lam is None else repr(lam)): round(v, 4) for lam, v in cv.items()},
              "chosen": "none" if best is None else repr(best)}
    if best is None:
        return report
    base = rows @ coef[:-1]
    x, const = _solve(A, y, np.maximum(base, 1e-6), max(float(coef[-1]), 1e-6), best * k)
    return {**report, "corrections": {key: float(x[j] - base[j]) for j, key in enumerate(keys)},
            "network_correction_ms": float(const - coef[-1])}


def _layer_design(features: Features, archs) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(networks x layer keys counts, the keys, each key's feature row) over the computing layers."""
    from nas.latency.fitted import count_matrix

    networks = []
    for arch in archs:
        specs, rows, _ = features.layers(arch)
        networks.append([(spec, row) for spec, row in zip(specs, rows) if spec.computes])
    A, first = count_matrix(networks, lambda item: item[0].key)
    return A, [spec.key for spec, _ in first], np.vstack([row for _, row in first])


def fit_transfer(F: np.ndarray, y: np.ndarray, names: list[str], n_sources: int, *,
                 version: int = FEATURE_VERSION) -> Fit:
    """Fit the NNLS model (as feature ``version`` fits it), and the baseline (best single source × factor, by LOO
    MAPE) for the report."""
    k = len(y)
    select = k >= MIN_EXTRA
    coef, selection = fit_selected(F, y, names, select=select, version=version)
    loo = loo_predictions(lambda a, b: fit_selected(a, b, names, select=select, version=version)[0], F, y)
    q = {"k": k, "method": "nnls",
         "loo": plain_metrics(loo, y),
         "in_sample": plain_metrics(F @ coef, y),
         "baseline": source_baseline(F, y, names, n_sources),
         "spread": {"min_ms": float(y.min()), "max_ms": float(y.max()),
                    "cv_pct": round(float(np.std(y) / np.mean(y) * 100), 3)}}
    if selection:
        q["extra_features"] = dict(selection, features=list(EXTRA_FEATURES))
    q["warnings"] = _warnings(q, k)
    return Fit("nnls", coef, q)


def source_baseline(F: np.ndarray, y: np.ndarray, names: list[str], n_sources: int) -> dict:
    """The report's baseline: the best single source column (of the first ``n_sources``) × a fitted factor, by
    leave-one-out MAPE; its leave-one-out metrics, source and factor."""
    best = None
    for j in range(n_sources):
        loo = loo_predictions(lambda a, b, j=j: fit_scaled(a, b, j), F, y)
        mape = float(np.mean(np.abs(loo - y) / y))
        if best is None or mape < best[0]:
            best = (mape, j, loo)
    _, bj, base_loo = best
    return dict(plain_metrics(base_loo, y), source=names[bj], factor=round(float(fit_scaled(F, y, bj)[bj]), 6))


def _warnings(q: dict, k: int) -> list[str]:
    w = []
    if k < 10:
        w.append(f"only {k} measurements: the fit is unreliable; measure 10-20 (`nas lut suggest`)")
    if q["spread"]["cv_pct"] < 5 or q["spread"]["max_ms"] < 1.15 * q["spread"]["min_ms"]:
        w.append(f"measurements are too uniform ({q['spread']['min_ms']:.4g}-{q['spread']['max_ms']:.4g} ms, "
                 f"CV {q['spread']['cv_pct']:.1f} %): ranking is not identifiable; measure diverse architectures "
                 "(`nas lut suggest`)")
    loo = q["loo"]
    if loo["mape_pct"] > 10:
        w.append(f"high leave-one-out error (MAPE {loo['mape_pct']:.1f} %)")
    if loo["spearman"] is not None and k >= 5 and loo["spearman"] < 0.7:
        w.append(f"low leave-one-out rank correlation (Spearman {loo['spearman']:.2f})")
    if q["baseline"]["mape_pct"] < loo["mape_pct"]:
        w.append(f"one scaled table ({q['baseline']['source']} × {q['baseline']['factor']:.4g}) has lower "
                 f"leave-one-out MAPE ({q['baseline']['mape_pct']:.1f} %) than the fitted model: the measurements "
                 "do not yet determine the extra coefficients; measure more")
    return w


# --------------------------------------------------------------------------------------------------------
# adapt
# --------------------------------------------------------------------------------------------------------
@renamed_arguments(space_name="space", measured_csv="measured")
def adapt(space: str, measured: str, device_name: str, *, sources: list[str] | None = None,
          dtype: str | None = None, threads: int | None = None, host: str | None = None,
          precision_split: bool | None = None) -> TransferredLatencyModel:
    """Fit a transferred model of ``space`` (a name or a YAML path) from measured whole networks (``measured``: a
    CSV with columns arch, latency_ms) over ``sources`` (default: every table that covers the space); not written,
    call ``.write(path)``. The model records the measurements' units and host
    (:func:`nas.latency.measure.network_times.origin`: ``host`` as named, else the host a ``nas lut adapt
    --measure-here`` record names, else unknown).

    ``precision_split``: each source as its float, int8 and other layers (:mod:`nas.latency.transfer.precision`),
    where the measurements (at dtype ``arch``) run all three; None: as the measurements' record says (``nas lut
    adapt --measure-here`` measures for it), else not."""
    from nas.space import load_space

    space = load_space(space)
    dtype = check_dtype(dtype)
    archs, y, texts = read_measurements(measured, space)
    names = sources or default_sources(space, dtype)
    if not names:
        raise NasError(f"no table covers space {space.name}", argument="space",
                       fix="profile one (`nas lut profile`) or choose a space that `nas lut list` shows")
    models = load_sources(names, space, dtype)
    found = origin(measured, host)
    if precision_split is None:
        precision_split = bool((found.get("measured_with") or {}).get("precision_split"))
    plain = models
    if precision_split and parts_seen(models, archs, space) == set(PARTS):
        models = split(models)
    feats = Features(models, space)
    F = feats.matrix(archs)
    n_src = len(models)
    colnames = feats.names + [NETWORK_FEATURE]
    fit = fit_transfer(F, y, colnames, n_src)
    if models is not plain:  # the baseline stays one whole table × a factor
        pf = Features(plain, space)
        fit.quality["baseline"] = source_baseline(pf.matrix(archs), y, pf.names, len(plain))
        fit.quality["warnings"] = _warnings(fit.quality, len(y))
    corrections = fit_corrections(feats, archs, y, fit.coef)
    listed = list_devices()
    src_docs = []
    for m in models:
        p = Path(m.table.csv_path).resolve()
        table = getattr(m, "source", m)
        shipped = listed.get(table.device) is not None and Path(listed[table.device]).resolve() == p
        src_docs.append({"device": m.device, "table": str(p.relative_to(SHIPPED_DIR.parent)) if
                         shipped and p.is_relative_to(SHIPPED_DIR.parent) else str(p),
                         "content_hash": m.table.content_hash(), **({"part": m.part} if m is not table else {})})
    doc = {"schema_version": SCHEMA_VERSION, "kind": KIND, "device": device_name,
           "description": f"{device_name}: transferred from {', '.join(m.device for m in models)} with k={len(y)} "
                          "whole-network measurements",
           "space": space.name, "dtype": dtype, "threads": threads if threads is not None else "unknown",
           "date": _dt.date.today().isoformat(), "k": len(y), "method": fit.method, "model": MODEL_TEXT,
           "coefficients": {n: float(c) for n, c in zip(colnames, fit.coef) if c != 0.0},
           "features": FEATURE_DOC, "feature_version": FEATURE_VERSION,
           "sources": src_docs, "quality": dict(fit.quality, corrections={k: v for k, v in corrections.items()
                                                                          if k in ("cv_mape_pct", "chosen")}),
           "provenance": {"measured_csv": str(measured), "command": "nas lut adapt"},
           **found,
           **({k: corrections[k] for k in ("corrections", "network_correction_ms")} if "corrections" in corrections
              else {})}
    if doc["threads"] == "unknown":
        del doc["threads"]
    model = TransferredLatencyModel(doc, dtype=dtype, sources=models)
    doc["measurements"] = [{"arch": t, "latency_ms": float(v), "fitted_ms": round(model.predict(a, space).latency_ms, 6)}
                           for a, t, v in zip(archs, texts, y)]
    return model


def quality_summary(model: TransferredLatencyModel) -> str:
    q = model.doc["quality"]

    def line(name, m):
        rho = "n/a" if m["spearman"] is None else f"{m['spearman']:.3f}"
        return f"  {name:<28} MAPE {m['mape_pct']:6.2f} %  within ±10 %: {m['within10_pct']:5.1f} %  Spearman {rho}"

    coefs = ", ".join(f"{n}={v:.4g}" for n, v in model.doc["coefficients"].items())
    out = [f"transferred {model.device} ({model.space_name}, {model.dtype}) from "
           f"{', '.join(s.device for s in model.sources)} with k={q['k']}: method {q['method']}",
           f"  coefficients: {coefs}",
           "  leave-one-out on the k measurements:"]
    out.append(line("transferred model", q["loo"]))
    b = q["baseline"]
    out.append(line(f"baseline {b['source']} × {b['factor']:.4g}", b))
    out.append(line("in-sample (chosen)", q["in_sample"]))
    if "extra_features" in q:
        x = q["extra_features"]
        out.append(f"  {', '.join(x['features'])}: {'used' if x['chosen'] == 'with' else 'not used'} (cross-validated "
                   f"MAPE with {x['cv_mape_pct']['with']:.2f} %, without {x['cv_mape_pct']['without']:.2f} %)")
    out += [f"  WARNING: {w}" for w in q["warnings"]]
    if not q["warnings"]:
        out.append("  no warnings")
    return "\n".join(out)
