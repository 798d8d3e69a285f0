"""LatencyModel: anything that maps an Architecture to milliseconds with a per-layer breakdown.

``LatencyModel`` is the small base class the search codes against (``predict``, ``check_covers``,
``identity``). ``TableLatencyModel`` is the measured-table kind: the sum of the table's entries over the
architecture's layers (a lookup by signature tuple in a dict), optionally corrected by a calibration fitted
by ``nas lut validate --calibrate`` (see :class:`Calibration`). Other kinds (e.g. a table transferred to a new
device) subclass ``LatencyModel``.

A missing signature is an error listing what is missing and the ``nas lut profile`` command that measures it;
``allow_estimate=True`` fills it from :mod:`nas.latency.estimate` instead and flags the row. Never 0, never a
constant.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from nas.arch import Architecture
from nas.errors import NasError
from nas.layers import LayerSpec, plan
from nas.latency.signatures import check_dtype, deploy_signature, space_signatures
from nas.latency.table import SCHEMA_VERSION, LatencyTable, read_table, signature_key
from nas.space import SearchSpace

_SHOW_MISSING = 6


@dataclass(frozen=True, slots=True)
class LayerLatency:
    """One row of a prediction's breakdown."""

    name: str
    key: str
    ms: float
    estimated: bool = False
    energy_mJ: float | None = None


@dataclass
class LatencyPrediction:
    latency_ms: float
    energy_mJ: float | None
    rows: list[LayerLatency]
    estimated: bool
    calibrated: bool = False
    raw_ms: float = 0.0  # the plain table sum, before calibration

    def to_dict(self) -> dict:
        return {"latency_ms": self.latency_ms, "energy_mJ": self.energy_mJ, "estimated": self.estimated,
                "calibrated": self.calibrated, "raw_ms": self.raw_ms,
                "rows": [{"name": r.name, "key": r.key, "ms": r.ms, "estimated": r.estimated} for r in self.rows]}


class LatencyModel(ABC):
    """What the search needs from any latency source."""

    device: str

    @abstractmethod
    def predict(self, arch: Architecture, space: SearchSpace, *, allow_estimate: bool = False) -> LatencyPrediction:
        """Latency (and energy where known) of ``arch`` with a per-layer breakdown."""

    @abstractmethod
    def check_covers(self, space: SearchSpace) -> None:
        """Raise a NasError naming what is missing if some architecture of ``space`` cannot be predicted."""

    @property
    @abstractmethod
    def identity(self) -> dict:
        """Plain dict (device, file, schema version, content hash, calibrated, ...) to store with results."""


def computes(spec: LayerSpec) -> bool:
    """Whether a layer runs anything in a whole network (an identity skip does not)."""
    return not (spec.op == "skip" and not spec.projects)


# --------------------------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------------------------
@dataclass
class Calibration:
    """End-to-end correction of a table sum, fitted on whole-network measurements.

    ``measured ≈ offset_ms + scale * Σ table_ms(layer) + per_layer_ms * (number of layers that compute)``

    Why this model: a per-layer table misses what is roughly proportional to what it sums and to how many
    layers there are -- a layer alone runs with its weights and input hot in cache, inside a network it does
    not (a scale); the boundary cost a single-layer model pays and a whole network does not, or the reverse
    (a per-layer term, may be negative); the network's own call overhead (the constant). Three candidate
    forms are fitted by least squares on *relative* error (what the search cares about): ``scale``,
    ``offset+scale`` and ``offset+scale+layers``; the form kept is the one with the fewest terms whose
    leave-one-out error is within one standard error of the lowest (the "one-SE rule"; fewer than 5
    measurements: ``scale`` only), so more terms are used only where they clearly predict architectures they
    were not fitted on. Per-row calibrated ms = scale * ms + per_layer_ms,
    plus one ``calibration offset`` row, so the breakdown still sums to the total.
    """

    offset_ms: float
    scale: float
    per_layer_ms: float
    n: int
    dtype: str
    date: str = ""
    form: str = "offset+scale+layers"
    metrics: dict = field(default_factory=dict)

    MODEL = "measured = offset_ms + scale * table_sum + per_layer_ms * n_layers (weighted least squares, rel. error)"
    FORMS = {"scale": (1,), "offset+scale": (0, 1), "offset+scale+layers": (0, 1, 2)}  # columns of [1, raw, n]

    def apply(self, raw_ms: float, n_layers: int) -> float:
        return self.offset_ms + self.scale * raw_ms + self.per_layer_ms * n_layers

    def to_dict(self) -> dict:
        return {"model": self.MODEL, "form": self.form, "offset_ms": self.offset_ms, "scale": self.scale,
                "per_layer_ms": self.per_layer_ms, "n": self.n, "dtype": self.dtype, "date": self.date,
                "metrics": self.metrics}

    @classmethod
    def from_dict(cls, d: dict, *, where: str) -> "Calibration":
        try:
            return cls(offset_ms=float(d["offset_ms"]), scale=float(d["scale"]),
                       per_layer_ms=float(d["per_layer_ms"]), n=int(d["n"]), dtype=str(d["dtype"]),
                       date=str(d.get("date", "")), form=str(d.get("form", "offset+scale+layers")),
                       metrics=dict(d.get("metrics", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise NasError(f"calibration entry is malformed ({exc})", where=where,
                           fix="re-run `nas lut validate --calibrate`") from None

    @staticmethod
    def _solve(x, m):
        import numpy as np

        w = 1.0 / m
        coef, *_ = np.linalg.lstsq(x * w[:, None], m * w, rcond=None)
        return coef

    @classmethod
    def loo_predict(cls, raw_ms, n_layers, measured_ms, form: str):
        """Leave-one-out predictions of ``form``: each measurement predicted by a fit on all the others."""
        import numpy as np

        raw, n, m = (np.asarray(v, dtype=float) for v in (raw_ms, n_layers, measured_ms))
        x = np.column_stack([np.ones_like(raw), raw, n])[:, cls.FORMS[form]]
        out = np.empty_like(m)
        for i in range(len(m)):
            keep = np.arange(len(m)) != i
            out[i] = x[i] @ cls._solve(x[keep], m[keep])
        return out

    @classmethod
    def fit(cls, raw_ms, n_layers, measured_ms, *, dtype: str, date: str = "") -> "Calibration":
        import numpy as np

        raw, n, m = (np.asarray(v, dtype=float) for v in (raw_ms, n_layers, measured_ms))
        if len(m) < 2 or np.any(m <= 0) or np.any(raw <= 0):
            raise NasError(f"calibration needs at least 2 positive measurements, got {len(m)}",
                           where="--calibrate", fix="use --n 10 or more")
        full = np.column_stack([np.ones_like(raw), raw, n])
        loo: dict[str, float] = {}
        se: dict[str, float] = {}
        coefs: dict[str, np.ndarray] = {}
        for form, cols in cls.FORMS.items():
            if form != "scale" and len(m) < 2 * len(cols) + 1:
                continue
            coef = cls._solve(full[:, cols], m)
            if coef[cols.index(1)] <= 0:  # a non-positive scale is not a latency model
                continue
            err = np.abs(cls.loo_predict(raw, n, m, form) - m) / m * 100
            loo[form], se[form], coefs[form] = float(err.mean()), float(err.std() / np.sqrt(len(err))), coef
        best = min(loo, key=loo.get)
        # one-standard-error rule: the fewest terms whose leave-one-out error is within one SE of the best
        form = next(f for f in cls.FORMS if f in loo and loo[f] <= loo[best] + se[best])
        c = dict(zip(cls.FORMS[form], coefs[form]))
        cal = cls(float(c.get(0, 0.0)), float(c[1]), float(c.get(2, 0.0)), len(m), dtype, date, form)
        cal.metrics = {"loo_mape_pct": loo, "loo_se_pct": se}
        return cal


# --------------------------------------------------------------------------------------------------------
# measured table
# --------------------------------------------------------------------------------------------------------
class TableLatencyModel(LatencyModel):
    """Sum of a measured table's entries over an architecture's layers, at a deployment dtype."""

    def __init__(self, table: LatencyTable, *, dtype: str | None = None, use_calibration: bool = True):
        self.table = table
        self.device = table.device
        self.dtype = check_dtype(dtype)
        self._estimator = None
        self.calibration: Calibration | None = None
        cal = (table.meta.get("calibration") or {}).get(self.dtype) if use_calibration else None
        if cal:
            self.calibration = Calibration.from_dict(cal, where=f"{table.meta_path}: calibration.{self.dtype}")

    # --- identity ----------------------------------------------------------------------------------------
    @property
    def identity(self) -> dict:
        ident = {"kind": "table", "device": self.device, "table": str(self.table.csv_path or ""),
                 "schema_version": SCHEMA_VERSION, "content_hash": self.table.content_hash(),
                 "dtype": self.dtype, "calibrated": self.calibration is not None}
        if self.calibration is not None:
            c = self.calibration
            ident["calibration"] = {"offset_ms": c.offset_ms, "scale": c.scale, "per_layer_ms": c.per_layer_ms,
                                    "n": c.n, "date": c.date}
        return ident

    # --- prediction -------------------------------------------------------------------------------------
    def layers(self, arch: Architecture, space: SearchSpace) -> list[LayerSpec]:
        return plan(arch, space)

    def predict(self, arch: Architecture, space: SearchSpace, *, allow_estimate: bool = False,
                calibrated: bool = True) -> LatencyPrediction:
        specs = plan(arch, space)
        r = arch.resolution
        lookup = self.table.lookup
        rows: list[LayerLatency] = []
        missing: list[LayerSpec] = []
        total = 0.0
        energy: float | None = 0.0
        estimated = False
        for spec in specs:
            own = spec.signature
            sig = deploy_signature(own, self.dtype)
            entry = lookup(sig, r)
            if entry is None:
                if not allow_estimate:
                    missing.append(spec)
                    continue
                ms = self._estimate(spec, sig)
                rows.append(LayerLatency(spec.name, signature_key(sig), ms, True, None))
                energy = None
                estimated = True
            else:
                ms = entry.latency_ms
                rows.append(LayerLatency(spec.name, spec.key if sig is own else signature_key(sig), ms,
                                         False, entry.energy_mJ))
                if energy is not None:
                    energy = None if entry.energy_mJ is None else energy + entry.energy_mJ
            total += ms
        if missing:
            raise self._missing_error(missing, space, arch)
        pred = LatencyPrediction(total, energy, rows, estimated, raw_ms=total)
        if calibrated and self.calibration is not None:
            pred = self._calibrate(pred, specs)
        return pred

    def _calibrate(self, pred: LatencyPrediction, specs: list[LayerSpec]) -> LatencyPrediction:
        c = self.calibration
        rows = []
        for spec, row in zip(specs, pred.rows):
            rows.append(LayerLatency(row.name, row.key, c.scale * row.ms + (c.per_layer_ms if computes(spec) else 0.0),
                                     row.estimated, row.energy_mJ))
        rows.append(LayerLatency("calibration offset", "calibration", c.offset_ms))
        total = sum(r.ms for r in rows)
        return LatencyPrediction(total, pred.energy_mJ, rows, pred.estimated, True, pred.raw_ms)

    def _estimate(self, spec: LayerSpec, sig: tuple) -> float:
        from dataclasses import replace

        from nas.latency.estimate import Estimator

        if self._estimator is None:
            self._estimator = Estimator({s: e.latency_ms for (_, s), e in self.table.entries.items()})
        return self._estimator.estimate(replace(spec, wbits=sig[-2], abits=sig[-1]))

    def _missing_error(self, missing: list[LayerSpec], space: SearchSpace, arch: Architecture | None) -> NasError:
        keys = list(dict.fromkeys(signature_key(deploy_signature(s.signature, self.dtype)) for s in missing))
        shown = ", ".join(keys[:_SHOW_MISSING]) + (f" and {len(keys) - _SHOW_MISSING} more" if
                                                   len(keys) > _SHOW_MISSING else "")
        dtype = "" if self.dtype == "arch" else f" --dtype {self.dtype}"
        target = "--archs ARCHS.csv" if arch is not None else "--all"
        return NasError(
            f"table '{self.device}' has no entry for {len(keys)} layer signature(s) of space {space.name}: {shown}",
            where=str(self.table.csv_path or self.device),
            fix=f"measure them with `nas lut profile --space {space.name} --device-name {self.device}{dtype} "
                f"{target}` on that device, or pass --allow-estimate to fill them from the documented estimator")

    # --- coverage ---------------------------------------------------------------------------------------
    def missing_for(self, space: SearchSpace) -> list[LayerSpec]:
        missing = []
        for r in space.resolutions:
            for sig, spec in space_signatures(space, self.dtype, [r]).items():
                if self.table.lookup(sig, r) is None:
                    missing.append(spec)
        return missing

    def check_covers(self, space: SearchSpace) -> None:
        missing = self.missing_for(space)
        if missing:
            raise self._missing_error(missing, space, None)


def load_latency_model(device_or_path: str, *, dtype: str | None = None, calibrated: bool = True) -> LatencyModel:
    """A shipped or profiled table by device name, or a table's CSV / metadata path, as a LatencyModel.

    ``dtype``: ``arch`` (default: each layer at the bit-widths the architecture chose), ``fp32`` or ``int8``
    (every layer deployed at that precision). ``calibrated=False`` ignores a stored calibration.
    A transferred model (``nas lut adapt``: a ``.transfer.yaml`` path or its name) loads as one too.
    """
    from nas.latency.transfer import TransferredLatencyModel, is_transferred_ref

    transferred = is_transferred_ref(device_or_path)
    if transferred is not None:
        return TransferredLatencyModel.read(transferred, dtype=dtype)
    return TableLatencyModel(read_table(device_or_path), dtype=dtype, use_calibration=calibrated)
