"""A per-layer latency table fitted from whole-network measurements (``nas lut fit``), for devices whose layers
cannot be timed alone (a vendor benchmark app, a board timed end to end).

Model, the table's own additive rule: ``latency(arch) = fixed + Σ_layers row(signature)``, where ``fixed`` (the
stem and head layers, which every network has, plus the per-network call overhead) is one constant: only
their sum is identifiable. Fitted on *relative* error with every value non-negative, and regularised toward a
roofline prior where the data is thin::

    minimise Σ_i ((Σ_s A_is x_s + fixed - y_i) / y_i)² + λ Σ_s ((x_s - p_s) / p_s)²,   x, fixed ≥ 0

``A_is`` counts layer signature s in network i; the prior ``p_s = a + b·MACs_s + c·activations_s`` is itself
fitted on the same networks (non-negative, 3 coefficients, so well determined by a few measurements). ``λ`` is
chosen by 5-fold cross-validation (relative error) among a small grid; with few measurements the prior
dominates, with many the data. A held-out share (``holdout``, default 20 %) is predicted by a fit on the rest:
its MAPE, share within ±10 % and Spearman go into the metadata, then the table is refitted on everything.

Honest about itself: the metadata says ``fitted`` (not profiled) with the method, λ, the held-out and in-sample
quality, the warnings and the measurements' provenance; a row's ``repeats`` is how many measured networks
contain it (rows in fewer than 3 are noted *thin*); signatures the measurements never exercised get **no row**
(listed in the metadata as ``unexercised``), so a prediction that needs one fails like a missing profiled
layer, or is estimated, flagged, with ``allow_estimate=True``. A computing layer the fit drives to 0 ms is not pinned
by the data either: it gets no row and is listed as ``unpinned`` (and ``unexercised``), never a 0-ms layer.
Identity skips get 0-ms rows (they run nothing).
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

import numpy as np

from nas.deprecation import renamed_arguments
from nas.errors import NasError
from nas.latency.metrics import plain_metrics
from nas.latency.signatures import check_dtype, deploy, space_signatures
from nas.latency.table import Entry, LatencyTable, new_meta
from nas.layers import LayerSpec, plan

MIN_FIT = 10  # fewer measurements than this: refused
LAMBDAS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # λ grid, per measurement (λ = value × n)
FOLDS = 5
THIN = 3
PINNED_MS = 1e-9  # a computing layer fitted at or below this is not pinned by the data: no row


@dataclass
class FittedTable:
    """What :func:`fit_table` returns: the table (not written; ``.table.write(path)``) and its quality."""

    table: LatencyTable
    quality: dict = field(default_factory=dict)


def _fixed_names(space) -> list[str]:
    return [f"stem.{i}" for i in range(len(space.stem))] + [f"head.{i}" for i in range(len(space.head))]


def count_matrix(networks, key) -> tuple[np.ndarray, list]:
    """(networks x distinct keys: how often each occurs in each network, the first item of each key), from
    per-network lists of items (layers) and ``key(item)``."""
    cols: dict = {}
    first: list = []
    rows = []
    for items in networks:
        counts: dict[int, int] = {}
        for item in items:
            j = cols.setdefault(key(item), len(cols))
            if j == len(first):
                first.append(item)
            counts[j] = counts.get(j, 0) + 1
        rows.append(counts)
    A = np.zeros((len(rows), len(first)))
    for i, counts in enumerate(rows):
        for j, c in counts.items():
            A[i, j] = c
    return A, first


def _design(archs, space, dtype: str) -> tuple[np.ndarray, list[LayerSpec], list[LayerSpec]]:
    """(A: networks × signatures counts, the signatures' specs, identity skips seen)."""
    fixed = set(_fixed_names(space))
    identities: dict[tuple, LayerSpec] = {}
    networks = []
    for arch in archs:
        layers = [deploy(spec, dtype) for spec in plan(arch, space) if spec.name not in fixed]
        for spec in layers:
            if not spec.computes:
                identities.setdefault(spec.signature, spec)
        networks.append([spec for spec in layers if spec.computes])
    A, specs = count_matrix(networks, lambda spec: spec.signature)
    return A, specs, list(identities.values())


def _prior(A: np.ndarray, specs: list[LayerSpec], y: np.ndarray) -> tuple[np.ndarray, float, dict]:
    """Per-signature prior ms (a + b·MACs + c·activations, fitted on the networks) and the prior constant."""
    from scipy.optimize import nnls

    feats = np.array([[1.0, s.macs() / 1e6, (s.h * s.w * s.cin + np.prod(s.out_hw) * s.cout) / 1e6] for s in specs])
    X = np.column_stack([A @ feats, np.ones(len(y))])  # per network: layers, MACs, activations, constant
    scale = X.mean(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(X / scale / y[:, None], np.ones_like(y))
    coef = coef / scale
    floor = max(1e-6, 1e-3 * float(np.median(y)) / max(1, A.shape[1]))
    prior = np.maximum(feats @ coef[:3], floor)
    return prior, max(float(coef[3]), floor), {"per_layer_ms": coef[0], "per_mmac_ms": coef[1],
                                                  "per_m_activation_ms": coef[2], "constant_ms": coef[3]}


def _solve(A: np.ndarray, y: np.ndarray, prior: np.ndarray, prior_c: float, lam: float) -> tuple[np.ndarray, float]:
    """x (per signature) and the constant, minimising relative error + λ · relative deviation from the prior."""
    from scipy.optimize import nnls

    n, s = A.shape
    data = np.column_stack([A * prior, np.full(n, prior_c)]) / y[:, None]
    reg = np.sqrt(lam) * np.eye(s + 1)
    reg[-1, -1] = np.sqrt(lam) * 1e-3  # the constant is barely pulled: it is what the data fixes best
    z, _ = nnls(np.vstack([data, reg]), np.concatenate([np.ones(n), np.sqrt(lam) * np.r_[np.ones(s), 1e-3]]),
                maxiter=50 * (s + 1))
    return z[:-1] * prior, float(z[-1] * prior_c)


def _choose_lambda(A: np.ndarray, y: np.ndarray, prior: np.ndarray, prior_c: float, seed: int) -> tuple[float, dict]:
    """λ with the lowest 5-fold cross-validated MAPE (per-measurement grid scaled by n)."""
    n = len(y)
    folds = np.random.default_rng(seed).permutation(n) % min(FOLDS, n)
    cv = {}
    for g in LAMBDAS:
        lam = g * n
        err = []
        for f in np.unique(folds):
            tr, te = folds != f, folds == f
            x, c = _solve(A[tr], y[tr], prior, prior_c, lam)
            err.append(np.abs((A[te] @ x + c - y[te]) / y[te]))
        cv[g] = float(np.mean(np.concatenate(err)) * 100)
    best = min(cv, key=cv.get)
    return best * n, {"grid_per_measurement": list(LAMBDAS), "cv_mape_pct": [round(cv[g], 4) for g in LAMBDAS]}


def fit_arrays(space, archs, y: np.ndarray, device_name: str, *, dtype: str | None = None, holdout: float = 0.2,
               seed: int = 0, description: str | None = None, provenance: dict | None = None,
               measurements: str = "") -> FittedTable:
    """Fit a table of ``space`` from architectures and their measured whole-network latencies (ms)."""
    dtype = check_dtype(dtype)
    if not 0 <= holdout < 1:
        raise NasError(f"holdout must be in [0, 1), got {holdout}", argument="holdout", fix="e.g. holdout=0.2")
    y = np.asarray(y, dtype=float)
    if len(y) < MIN_FIT:
        raise NasError(f"{len(y)} distinct measured architecture(s); a fitted table needs at least {MIN_FIT} "
                       "(and more than its signatures to be well determined)", argument="measured",
                       fix="measure more networks (`nas lut suggest` picks diverse ones), or use `nas lut adapt`, "
                           "which needs 10-20")
    A, specs, identities = _design(archs, space, dtype)
    rng = np.random.default_rng(seed)
    quality: dict = {"n": len(y)}
    if holdout > 0 and len(y) >= 2 * MIN_FIT:
        test = rng.permutation(len(y))[: int(round(holdout * len(y)))]
        train = np.setdiff1d(np.arange(len(y)), test)
        prior, prior_c, _ = _prior(A[train], specs, y[train])
        lam, _ = _choose_lambda(A[train], y[train], prior, prior_c, seed)
        x, c = _solve(A[train], y[train], prior, prior_c, lam)
        quality["heldout"] = dict(plain_metrics(A[test] @ x + c, y[test]), fitted_on=len(train))
    prior, prior_c, prior_coef = _prior(A, specs, y)
    lam, cv = _choose_lambda(A, y, prior, prior_c, seed)
    x, c = _solve(A, y, prior, prior_c, lam)
    quality.update(in_sample=plain_metrics(A @ x + c, y), lambda_=float(lam), cv=cv,
                   prior={k: float(v) for k, v in prior_coef.items()},
                   spread={"min_ms": float(y.min()), "max_ms": float(y.max()),
                           "cv_pct": round(float(np.std(y) / np.mean(y) * 100), 3)})
    counts = (A > 0).sum(axis=0)
    pinned = x > PINNED_MS
    unpinned = sorted(s.key for s, ok in zip(specs, pinned) if not ok)
    unexercised = sorted({s.key for s in space_signatures(space, dtype).values()
                          if s.computes and s.name not in _fixed_names(space)} - {s.key for s in specs})
    quality["warnings"] = _warnings(quality, len(specs), int((counts < THIN).sum()), len(unexercised),
                                    len(unpinned))
    quality = {("lambda" if k == "lambda_" else k): v for k, v in quality.items()}
    meta = new_meta(
        device=device_name, description=description or f"{device_name}: fitted from {len(y)} whole-network "
                                                         "measurements with nas lut fit",
        runtime="as measured (see provenance)", runtime_version="n/a", threads="n/a", batch="n/a", dtype=dtype,
        date=_dt.date.today().isoformat(), spread="std", spaces=[space.name],
        protocol=(f"fitted, not profiled: {len(y)} whole-network latencies, additive per-layer rows + one constant "
                  "(stem, head, call overhead), non-negative least squares on relative error, ridge toward a "
                  "roofline prior (a + b*MACs + c*activations) with lambda by 5-fold CV (nas.latency.fitted)"),
        provenance=provenance or {"source": measurements or "user measurements", "commit": "n/a",
                                  "license": "the measurements' own"},
        fitted=quality, unexercised=sorted(set(unexercised) | set(unpinned)), unpinned=unpinned,
        fixed=[{"space": space.name, "layers": _fixed_names(space), "latency_ms": max(c, 1e-9),
                "source_key": "fitted constant: stem + head + per-network overhead"}])
    table = LatencyTable(meta=meta)
    for spec, value, k, ok in zip(specs, x, counts, pinned):
        if not ok:  # the fit drove it to 0 ms: the data does not pin it, so it gets no row (never a 0-ms layer)
            continue
        note = f"fitted from {k} of {len(y)} networks" + ("; thin" if k < THIN else "")
        table.add(spec.signature, Entry(float(value), 0.0, int(k), None, "", note))
    for spec in identities:
        table.add(spec.signature, Entry(0.0, 0.0, 0, None, "", "identity: runs nothing"))
    return FittedTable(table, quality)


def _warnings(q: dict, n_sigs: int, thin: int, unexercised: int, unpinned: int = 0) -> list[str]:
    w = []
    n = q["n"]
    if n < 2 * n_sigs:
        w.append(f"{n} measurements for {n_sigs} layer signatures: rows lean on the roofline prior; measure more "
                 "for a table that stands on its own")
    if q["spread"]["cv_pct"] < 5 or q["spread"]["max_ms"] < 1.15 * q["spread"]["min_ms"]:
        w.append(f"measurements are too uniform (CV {q['spread']['cv_pct']:.1f} %): rows are not identifiable; "
                 "measure diverse architectures (`nas lut suggest`)")
    held = q.get("heldout")
    if held and held["mape_pct"] > 10:
        w.append(f"held-out MAPE {held['mape_pct']:.1f} %")
    if thin:
        w.append(f"{thin} row(s) rest on fewer than {THIN} networks (noted 'thin')")
    if unexercised:
        w.append(f"{unexercised} signature(s) of the space were never measured: no row (a prediction needing one "
                 "fails, or is estimated with allow_estimate=True)")
    if unpinned:
        w.append(f"{unpinned} measured signature(s) fitted to 0 ms (the measurements do not pin them): no row, "
                 "listed as unexercised; measure more networks that contain them")
    return w


@renamed_arguments(space_name="space", measured_csv="measured")
def fit_table(space: str, measured: str, device_name: str, **kw) -> FittedTable:
    """:func:`fit_arrays` for ``space`` (a name or a YAML path) on ``measured``, a CSV with columns ``arch,
    latency_ms`` (repeated architectures: median)."""
    from nas.latency.measure.network_times import read_measurements
    from nas.space import load_space

    space = load_space(space)
    archs, y, _ = read_measurements(measured, space)
    return fit_arrays(space, archs, y, device_name, measurements=str(measured), **kw)
