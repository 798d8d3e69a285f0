"""Latency tables transferred to a new device from a handful of whole-network measurements.

Users own devices no table covers, and often can time only whole networks. The transferred model reuses what
the existing tables know about *which layers are expensive* and fits how the new device weighs it, from k
measured architectures (any k >= 3; 10-20 is a good start, ``nas lut suggest`` says which).

Model (additive over layers, so a prediction keeps its per-layer breakdown)::

    latency_ms(arch) = network_ms + Σ_layers Σ_f coef_f * feature_f(layer)

with per-layer features ``table:<source>`` (the layer's latency in each source table, ms), ``macs_M``,
``params_M``, ``kernels`` (conv / linear / pool / residual-add kernels the layer launches: what dominates on
GPUs), ``activations_M`` (elements read + written: memory traffic) and ``layers`` (1 per layer that computes).
Coefficients are non-negative (a layer never makes a network faster) and fitted by non-negative least squares
on *relative* error, ``Σ ((pred - measured) / measured)²`` (scipy ``nnls``; features scaled to mean 1 first).
Non-negativity is the regulariser: with few points NNLS sets most coefficients to 0. (Choosing between this
and "best single table × factor" by leave-one-out error was tried: on the development devices it lost rank
correlation at every k, since LOO on 5-20 points is too noisy to choose with, so the baseline is reported only.)

Quality: leave-one-out (LOO) predictions of the k measurements give MAPE, share within ±10 % and Spearman, next
to the same for the baseline "best single source table × a fitted factor" (table chosen by LOO MAPE); warnings
say when the fit is unreliable (few points, too uniform measurements, high LOO error, baseline better).

On disk: one YAML file (``<name>.transfer.yaml``): kind, device, space, dtype, date, k, method, coefficients,
sources (device name, table path, content hash: loading checks the hash), the quality report and the k
measurements themselves. No pickles. Files in ``latency_tables/`` or ``$NAS_LATENCY_TABLES`` are found by name.
"""
from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from nas.arch import Architecture
from nas.errors import NasError
from nas.latency.model import LatencyModel, LatencyPrediction, LayerLatency, TableLatencyModel, computes
from nas.latency.signatures import check_dtype, deploy_signature
from nas.latency.table import read_table
from nas.layers import LayerSpec, plan
from nas.space import SearchSpace

KIND = "transferred"
SCHEMA_VERSION = 1
TRANSFER_SUFFIX = ".transfer.yaml"
MIN_K = 3
LAYER_FEATURES = ("macs_M", "params_M", "kernels", "activations_M", "layers")
NETWORK_FEATURE = "network_ms"
MODEL_TEXT = ("latency_ms = network_ms + sum over layers of sum_f coef_f * feature_f(layer); features: each source "
              "table's layer latency (table:<device>), macs_M, params_M, kernels, activations_M, layers; "
              "non-negative least squares on relative error")
FEATURE_DOC = {
    "table:<device>": "the layer's latency in that source table (ms)",
    "macs_M": "multiply-accumulates of conv + linear, millions",
    "params_M": "parameters, millions",
    "kernels": "conv / linear / pool / residual-add kernels the layer runs",
    "activations_M": "activation elements read + written by its convs, millions",
    "layers": "1 if the layer computes anything (an identity skip does not)",
    "network_ms": "constant per network (call overhead)",
}


# --------------------------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------------------------
def layer_features(spec: LayerSpec) -> tuple[float, ...]:
    """The table-free per-layer features, in :data:`LAYER_FEATURES` order."""
    if not computes(spec):
        return (0.0,) * len(LAYER_FEATURES)
    parts = spec._parts()
    ho, wo = spec.out_hw
    if spec.op == "ir":
        act = spec.h * spec.w * spec.cin + (spec.h * spec.w * spec.mid if spec.expand_conv else 0) \
            + ho * wo * spec.mid + ho * wo * spec.cout
    else:
        act = spec.h * spec.w * spec.cin + ho * wo * spec.cout
    kernels = len(parts) + (spec.op == "pool") + bool(spec.residual)
    return (sum(m for _, _, m in parts) / 1e6, spec.params() / 1e6, float(kernels), act / 1e6, 1.0)


class Features:
    """Per-layer feature rows of architectures from source tables (cached per layer signature)."""

    def __init__(self, sources: list[TableLatencyModel], space: SearchSpace):
        if not sources:
            raise NasError(f"no source table covers space {space.name}", where="--from",
                           fix="give --from DEVICE for tables that cover it (`nas lut list`)")
        self.sources = sources
        self.space = space
        self.names = [f"table:{s.device}" for s in sources] + list(LAYER_FEATURES)
        self._cache: dict[tuple, np.ndarray] = {}

    def layers(self, arch: Architecture) -> tuple[list[LayerSpec], np.ndarray]:
        specs = plan(arch, self.space)
        rows = []
        for spec in specs:
            key = (arch.resolution, spec.signature)
            row = self._cache.get(key)
            if row is None:
                row = np.array([self._table_ms(src, spec, arch) for src in self.sources] + list(layer_features(spec)))
                self._cache[key] = row
            rows.append(row)
        return specs, np.vstack(rows)

    def _table_ms(self, src: TableLatencyModel, spec: LayerSpec, arch: Architecture) -> float:
        entry = src.table.lookup(deploy_signature(spec.signature, src.dtype), arch.resolution)
        if entry is None:
            raise src._missing_error([spec], self.space, arch)
        return entry.latency_ms

    def network(self, arch: Architecture) -> np.ndarray:
        """Whole-network features: the layer features summed, then 1 for the network constant."""
        return np.append(self.layers(arch)[1].sum(axis=0), 1.0)

    def matrix(self, archs) -> np.ndarray:
        return np.vstack([self.network(a) for a in archs])


def default_sources(space: SearchSpace, dtype: str | None = None) -> list[str]:
    """Every shipped or profiled table (not transferred models) that lists ``space`` and covers it."""
    from nas.latency.table import list_devices

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
    sources = []
    for name in names:
        model = TableLatencyModel(read_table(name), dtype=dtype, use_calibration=False)
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


def loo_predictions(fit, F: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.empty_like(y)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        out[i] = F[i] @ fit(F[keep], y[keep])
    return out


def metrics(pred, measured) -> dict:
    from nas.latency.validate import metrics as _metrics

    m = _metrics(pred, measured)
    return {k: (None if isinstance(v, float) and math.isnan(v) else round(v, 6) if isinstance(v, float) else v)
            for k, v in m.items()}


@dataclass
class Fit:
    method: str  # "nnls"
    coef: np.ndarray
    quality: dict = field(default_factory=dict)


def fit_transfer(F: np.ndarray, y: np.ndarray, names: list[str], n_sources: int) -> Fit:
    """Fit the NNLS model, and the baseline (best single source × factor, by LOO MAPE) for the report."""
    k = len(y)
    baseline = None
    for j in range(n_sources):
        loo = loo_predictions(lambda a, b, j=j: fit_scaled(a, b, j), F, y)
        mape = float(np.mean(np.abs(loo - y) / y))
        if baseline is None or mape < baseline[0]:
            baseline = (mape, j, loo)
    _, bj, base_loo = baseline
    loo = loo_predictions(fit_nnls, F, y)
    coef = fit_nnls(F, y)
    q = {"k": k, "method": "nnls",
         "loo": metrics(loo, y),
         "in_sample": metrics(F @ coef, y),
         "baseline": dict(metrics(base_loo, y), source=names[bj],
                          factor=round(float(fit_scaled(F, y, bj)[bj]), 6)),
         "spread": {"min_ms": float(y.min()), "max_ms": float(y.max()),
                    "cv_pct": round(float(np.std(y) / np.mean(y) * 100), 3)}}
    q["warnings"] = _warnings(q, k)
    return Fit("nnls", coef, q)


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
# the model
# --------------------------------------------------------------------------------------------------------
class TransferredLatencyModel(LatencyModel):
    """A latency model for a new device fitted from k whole-network measurements over source tables."""

    def __init__(self, doc: dict, *, path: Path | None = None, dtype: str | None = None,
                 sources: list[TableLatencyModel] | None = None):
        self.doc = doc
        self.path = path
        where = str(path or "transferred model")
        try:
            self.device = str(doc["device"])
            self.space_name = str(doc["space"])
            self.dtype = check_dtype(doc.get("dtype"))
            self.threads = int(doc.get("threads", 1) or 1)
            coefs = {str(k): float(v) for k, v in doc["coefficients"].items()}
            source_docs = list(doc["sources"])
        except (KeyError, TypeError, ValueError) as exc:
            raise NasError(f"transferred model is malformed ({exc})", where=where,
                           fix="re-create it with `nas lut adapt`") from None
        if dtype is not None and check_dtype(dtype) != self.dtype:
            raise NasError(f"transferred model was fitted at dtype {self.dtype}, not {dtype}", where=where,
                           fix=f"use --dtype {self.dtype} or adapt again from measurements at {dtype}")
        self.sources = list(sources or [])
        for s in source_docs if sources is None else []:
            table = read_table(_source_path(s))
            if table.content_hash() != s["content_hash"]:
                raise NasError(f"source table '{s['device']}' changed since the transfer was fitted "
                               f"(hash {table.content_hash()} != {s['content_hash']})", where=where,
                               fix="run `nas lut adapt` again with the same measurements")
            self.sources.append(TableLatencyModel(table, dtype=self.dtype, use_calibration=False))
        names = [f"table:{s.device}" for s in self.sources] + list(LAYER_FEATURES) + [NETWORK_FEATURE]
        unknown = sorted(set(coefs) - set(names))
        if unknown:
            raise NasError(f"unknown coefficient(s) {', '.join(unknown)}", where=where,
                           fix=f"coefficients may be {', '.join(names)}")
        self.coef = np.array([coefs.get(n, 0.0) for n in names])
        self._features: Features | None = None

    @classmethod
    def read(cls, path: str | Path, *, dtype: str | None = None) -> "TransferredLatencyModel":
        path = Path(path)
        if not path.is_file():
            raise NasError("transferred model file not found", where=str(path),
                           fix="give the file written by `nas lut adapt -o PATH`")
        try:
            doc = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise NasError(f"not valid YAML ({str(exc).splitlines()[0]})", where=str(path)) from None
        if not isinstance(doc, dict) or doc.get("kind") != KIND:
            raise NasError(f"not a transferred latency model (kind: {KIND} missing)", where=str(path))
        if doc.get("schema_version") != SCHEMA_VERSION:
            raise NasError(f"schema_version {doc.get('schema_version')!r} is not supported (this version reads "
                           f"{SCHEMA_VERSION})", where=str(path), fix="re-create it with `nas lut adapt`")
        return cls(doc, path=path, dtype=dtype)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(yaml.safe_dump(self.doc, sort_keys=False, allow_unicode=True))
        tmp.replace(path)
        self.path = path
        return path

    @property
    def identity(self) -> dict:
        return {"kind": KIND, "device": self.device, "table": str(self.path or ""), "schema_version": SCHEMA_VERSION,
                "content_hash": self.content_hash(), "dtype": self.dtype, "calibrated": False,
                "k": self.doc.get("k"), "method": self.doc.get("method"),
                "sources": [s.device for s in self.sources]}

    def content_hash(self) -> str:
        import hashlib
        import json

        body = {k: self.doc.get(k) for k in ("space", "dtype", "coefficients", "sources")}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    def _check_space(self, space: SearchSpace) -> None:
        if space.name != self.space_name:
            raise NasError(f"transferred model '{self.device}' was fitted for space {self.space_name}, "
                           f"not {space.name}", where=str(self.path or self.device),
                           fix=f"use --space {self.space_name} or adapt from measurements in {space.name}")

    def features(self, space: SearchSpace) -> Features:
        self._check_space(space)
        if self._features is None or self._features.space is not space:
            self._features = Features(self.sources, space)
        return self._features

    def predict(self, arch: Architecture, space: SearchSpace, *, allow_estimate: bool = False,
                calibrated: bool = True) -> LatencyPrediction:
        specs, rows = self.features(space).layers(arch)
        per_layer = rows @ self.coef[:-1]
        out = [LayerLatency(s.name, s.key, float(ms)) for s, ms in zip(specs, per_layer)]
        out.append(LayerLatency("network constant", NETWORK_FEATURE, float(self.coef[-1])))
        total = float(sum(r.ms for r in out))
        return LatencyPrediction(total, None, out, False, False, total)

    def check_covers(self, space: SearchSpace) -> None:
        self._check_space(space)
        for src in self.sources:
            src.check_covers(space)


def _source_path(src: dict) -> str:
    """A source's table: its recorded path (relative = to the project root) if present, else its device name."""
    from nas.latency.table import PROJECT_ROOT

    p = Path(str(src["table"]))
    p = p if p.is_absolute() else PROJECT_ROOT / p
    return str(p) if p.is_file() else str(src["device"])


def is_transferred_ref(device_or_path: str) -> Path | None:
    """The model file if ``device_or_path`` names a transferred model (a path or a name in the table dirs)."""
    text = str(device_or_path)
    if text.endswith(TRANSFER_SUFFIX) or (text.endswith((".yaml", ".yml")) and not text.endswith(".meta.yaml")):
        return Path(text)
    if "/" in text or text.endswith(".csv"):
        return None
    from nas.latency.table import list_transferred

    return list_transferred().get(text)


# --------------------------------------------------------------------------------------------------------
# adapt
# --------------------------------------------------------------------------------------------------------
def read_measurements(path: str, space: SearchSpace) -> tuple[list[Architecture], np.ndarray, list[str]]:
    """Parse ``arch, latency_ms`` rows; repeated architectures are merged (median). Errors name the row."""
    from nas.arch_csv import parse_arch_row, read_arch_csv

    df = read_arch_csv(path)
    if "latency_ms" not in df.columns:
        raise NasError(f"no column 'latency_ms' (columns: {', '.join(df.columns)})", where=path,
                       fix="the CSV needs columns arch, latency_ms (`nas lut suggest` writes one to fill in)")
    by_arch: dict[Architecture, list[float]] = {}
    texts: dict[Architecture, str] = {}
    for i, (text, lat) in enumerate(zip(df["arch"], df["latency_ms"])):
        where = f"{path} row {i + 1}"
        arch = parse_arch_row(space, text, path, i)
        try:
            value = float(lat)
        except ValueError:
            raise NasError(f"latency_ms '{lat}' is not a number", where=where,
                           fix="fill in the measured whole-network latency in ms") from None
        if not math.isfinite(value) or value <= 0:
            raise NasError(f"latency_ms must be a positive number, got {lat}", where=where,
                           fix="fill in the measured whole-network latency in ms, or remove the row")
        by_arch.setdefault(arch, []).append(value)
        texts.setdefault(arch, str(text))
    if len(by_arch) < MIN_K:
        raise NasError(f"{len(by_arch)} distinct measured architecture(s); at least {MIN_K} are needed "
                       "(10-20 recommended)", where=path,
                       fix=f"measure more: `nas lut suggest --space {space.name} --n 10 -o {path}`")
    archs = list(by_arch)
    return archs, np.array([float(np.median(by_arch[a])) for a in archs]), [texts[a] for a in archs]


def adapt(space_name: str, measured_csv: str, device_name: str, *, sources: list[str] | None = None,
          dtype: str | None = None, threads: int | None = None) -> TransferredLatencyModel:
    """Fit a transferred model from measured whole networks (not written; call ``.write(path)``)."""
    from nas.latency.table import SHIPPED_DIR, list_devices
    from nas.space import load_space

    space = load_space(space_name)
    dtype = check_dtype(dtype)
    archs, y, texts = read_measurements(measured_csv, space)
    names = sources or default_sources(space, dtype)
    if not names:
        raise NasError(f"no table covers space {space.name}", where="--space",
                       fix="profile one (`nas lut profile`) or choose a space that `nas lut list` shows")
    models = load_sources(names, space, dtype)
    feats = Features(models, space)
    F = feats.matrix(archs)
    n_src = len(models)
    colnames = feats.names + [NETWORK_FEATURE]
    fit = fit_transfer(F, y, colnames, n_src)
    listed = list_devices()
    src_docs = []
    for m in models:
        p = Path(m.table.csv_path).resolve()
        shipped = listed.get(m.device) is not None and Path(listed[m.device]).resolve() == p
        src_docs.append({"device": m.device, "table": str(p.relative_to(SHIPPED_DIR.parent)) if
                         shipped and p.is_relative_to(SHIPPED_DIR.parent) else str(p),
                         "content_hash": m.table.content_hash()})
    pred = F @ fit.coef
    doc = {"schema_version": SCHEMA_VERSION, "kind": KIND, "device": device_name,
           "description": f"{device_name}: transferred from {', '.join(m.device for m in models)} with k={len(y)} "
                          "whole-network measurements",
           "space": space.name, "dtype": dtype, "threads": threads if threads is not None else "unknown",
           "date": _dt.date.today().isoformat(), "k": len(y), "method": fit.method, "model": MODEL_TEXT,
           "coefficients": {n: float(c) for n, c in zip(colnames, fit.coef) if c != 0.0},
           "features": FEATURE_DOC,
           "sources": src_docs, "quality": fit.quality,
           "provenance": {"measured_csv": str(measured_csv), "command": "nas lut adapt"},
           "measurements": [{"arch": t, "latency_ms": float(v), "fitted_ms": round(float(p), 6)}
                            for t, v, p in zip(texts, y, pred)]}
    if doc["threads"] == "unknown":
        del doc["threads"]
    return TransferredLatencyModel(doc, dtype=dtype, sources=models)


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
    out += [f"  WARNING: {w}" for w in q["warnings"]]
    if not q["warnings"]:
        out.append("  no warnings")
    return "\n".join(out)
