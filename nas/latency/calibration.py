"""End-to-end correction of a table sum, fitted on whole-network measurements
(:func:`nas.latency.measure.validate.validate` with ``calibrate=True``; ``nas lut validate --calibrate``)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nas.errors import NasError
from nas.latency.metrics import loo_predictions


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
    host_fingerprint: dict | None = None  # the host it was measured on (nas.latency.measure.host)

    MODEL = "measured = offset_ms + scale * table_sum + per_layer_ms * n_layers (weighted least squares, rel. error)"
    FORMS = {"scale": (1,), "offset+scale": (0, 1), "offset+scale+layers": (0, 1, 2)}  # columns of [1, raw, n]

    def apply(self, raw_ms: float, n_layers: int) -> float:
        return self.offset_ms + self.scale * raw_ms + self.per_layer_ms * n_layers

    def to_dict(self) -> dict:
        return {"model": self.MODEL, "form": self.form, "offset_ms": self.offset_ms, "scale": self.scale,
                "per_layer_ms": self.per_layer_ms, "n": self.n, "dtype": self.dtype, "date": self.date,
                "metrics": self.metrics, **({"host_fingerprint": self.host_fingerprint} if self.host_fingerprint
                                            else {})}

    @classmethod
    def from_dict(cls, d: dict, *, where: str) -> "Calibration":
        """Read and check a stored calibration: offset and per-layer term finite, scale finite and > 0, n >= 1
        (a hand-edited ``offset_ms: nan`` or ``scale: -1`` is an error naming the key, never a silent price)."""
        fix = "delete the entry, or fit it again by validating the table with calibrate=True"
        try:
            cal = cls(offset_ms=float(d["offset_ms"]), scale=float(d["scale"]),
                      per_layer_ms=float(d["per_layer_ms"]), n=int(d["n"]), dtype=str(d["dtype"]),
                      date=str(d.get("date", "")), form=str(d.get("form", "offset+scale+layers")),
                      metrics=dict(d.get("metrics") or {}), host_fingerprint=d.get("host_fingerprint") or None)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise NasError(f"calibration entry is malformed ({exc})", where=where, fix=fix) from None
        for key in ("offset_ms", "scale", "per_layer_ms"):
            if not math.isfinite(getattr(cal, key)):
                raise NasError(f"{key} is {getattr(cal, key)}, not a finite number", where=f"{where}.{key}", fix=fix)
        if cal.scale <= 0:
            raise NasError(f"scale is {cal.scale}: a calibration scales the table sum by a positive factor",
                           where=f"{where}.scale", fix=fix)
        if cal.n < 1:
            raise NasError(f"n is {cal.n}: a calibration is fitted on at least 2 measurements", where=f"{where}.n",
                           fix=fix)
        return cal

    @staticmethod
    def _solve(x, m):
        """Least squares on relative error: rows weighted by 1 / measured."""
        w = 1.0 / m
        coef, *_ = np.linalg.lstsq(x * w[:, None], m * w, rcond=None)
        return coef

    @classmethod
    def loo_predict(cls, raw_ms, n_layers, measured_ms, form: str):
        """Leave-one-out predictions of ``form``: each measurement predicted by a fit on all the others."""
        raw, n, m = (np.asarray(v, dtype=float) for v in (raw_ms, n_layers, measured_ms))
        x = np.column_stack([np.ones_like(raw), raw, n])[:, cls.FORMS[form]]
        return loo_predictions(cls._solve, x, m)

    @classmethod
    def fit(cls, raw_ms, n_layers, measured_ms, *, dtype: str, date: str = "") -> "Calibration":
        """The form chosen by the one-SE rule (see the class docstring), fitted on all measurements;
        ``metrics`` holds each form's leave-one-out MAPE and its standard error."""
        raw, n, m = (np.asarray(v, dtype=float) for v in (raw_ms, n_layers, measured_ms))
        if len(m) < 2 or np.any(m <= 0) or np.any(raw <= 0):
            raise NasError(f"calibration needs at least 2 positive measurements, got {len(m)}",
                           argument="measured_ms", fix="fit on 10 or more architectures")
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
