"""The explicit estimator behind ``allow_estimate=True`` (``--allow-estimate``): used only when asked, and every
row it fills is flagged.

Model, fitted per table and per op type on the table's own measured rows (non-negative least squares):

    ms(layer) = a_op + b_op * MACs + c_op * activation elements (input + output)

Rows are taken from the same op *and* the same bit-widths when there are at least 3 of them, else the same
op at any bit-width, else every row. The estimate is floored at the smallest positive latency among those
rows, so it is never 0. It is a rough extrapolation (roofline-like: per-call cost + compute + memory), meant
to let a search proceed while a profile is pending, never a substitute for measuring.

Energy is estimated the same way where a table has it (bitfusion, edgegpu, eyeriss, fpga): the same model and
row choice, fitted on the table's energy rows (energy = per-call cost + compute + data movement), floored at
the smallest positive energy among those rows; a table without energy gives an estimated row no energy either.
"""
from __future__ import annotations

import numpy as np

from nas.layers import SIGNATURE_FIELDS, LayerSpec

_MIN_ROWS = 3


def _features(spec: LayerSpec) -> list[float]:
    ho, wo = spec.out_hw
    return [1.0, spec.macs() / 1e6, (spec.h * spec.w * spec.cin + ho * wo * spec.cout) / 1e6]


class Estimator:
    """Fitted lazily per (op, bits) group from ``entries`` (signature -> latency ms, or energy mJ); bits are all
    four bit fields (a boundary's two sides)."""

    def __init__(self, entries: dict[tuple, float]):
        self._rows = [(LayerSpec(name="", **dict(zip(SIGNATURE_FIELDS, sig))), ms) for sig, ms in entries.items()]
        self._fits: dict[tuple, tuple[np.ndarray, float]] = {}

    def _fit(self, spec: LayerSpec) -> tuple[np.ndarray, float]:
        key = (spec.op,) + spec.signature[-4:]
        if key not in self._fits:
            groups = ([r for r in self._rows if (r[0].op,) + r[0].signature[-4:] == key],
                      [r for r in self._rows if r[0].op == spec.op], self._rows)
            rows = next(g for g in groups if len(g) >= _MIN_ROWS or g is self._rows)
            from scipy.optimize import nnls

            x = np.array([_features(s) for s, _ in rows])
            y = np.array([ms for _, ms in rows])
            coef, _ = nnls(x, y)
            positive = y[y > 0]
            floor = float(positive.min()) if positive.size else 1e-3
            self._fits[key] = (coef, floor)
        return self._fits[key]

    def estimate(self, spec: LayerSpec) -> float:
        """The layer's estimated value (ms, or mJ for an energy estimator) at ``spec``'s own bit-widths; never 0."""
        coef, floor = self._fit(spec)
        return max(float(np.dot(coef, _features(spec))), floor)
