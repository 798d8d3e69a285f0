"""How well predicted latencies match measured ones (MAPE, share within ±10 %, Spearman), and leave-one-out
predictions: the one implementation behind validation, calibration and transfer."""
from __future__ import annotations

import math

import numpy as np


def metrics(pred, measured) -> dict:
    """MAPE and share within ±10 % (percent), Spearman, mean predicted/measured ratio and n."""
    from scipy.stats import spearmanr

    p, m = np.asarray(pred, float), np.asarray(measured, float)
    rel = (p - m) / m
    rho = float(spearmanr(p, m).statistic) if len(m) > 2 else float("nan")
    return {"mape_pct": float(np.mean(np.abs(rel)) * 100), "within10_pct": float(np.mean(np.abs(rel) <= 0.10) * 100),
            "spearman": rho, "mean_ratio": float(np.mean(p / m)), "n": int(len(m))}


def loo_predictions(fit, F: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each row predicted by ``fit(F_others, y_others)`` (coefficients), fitted without that row."""
    out = np.empty_like(y)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        out[i] = F[i] @ fit(F[keep], y[keep])
    return out


def plain_metrics(pred, measured) -> dict:
    """:func:`metrics` rounded to 6 decimals, NaN as None: what a YAML report stores."""
    m = metrics(pred, measured)
    return {k: (None if isinstance(v, float) and math.isnan(v) else round(v, 6) if isinstance(v, float) else v)
            for k, v in m.items()}
