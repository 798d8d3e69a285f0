"""Latency metrics and the one leave-one-out (nas.latency.metrics)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nas.latency.metrics import loo_predictions, metrics, plain_metrics


def test_metrics_of_exact_and_of_biased_predictions():
    measured = [1.0, 2.0, 4.0, 8.0]
    m = metrics(measured, measured)
    assert m == {"mape_pct": 0.0, "within10_pct": 100.0, "spearman": pytest.approx(1.0), "mean_ratio": 1.0, "n": 4}
    high = metrics([1.2 * v for v in measured], measured)  # 20 % too high everywhere, same order
    assert high["mape_pct"] == pytest.approx(20) and high["within10_pct"] == 0
    assert high["mean_ratio"] == pytest.approx(1.2) and high["spearman"] == pytest.approx(1.0)
    mixed = metrics([1.05, 2.5, 4.0, 6.0], measured)  # within ±10 %: 1.05 and 4.0
    assert mixed["within10_pct"] == 50 and mixed["spearman"] == pytest.approx(1.0)


def test_plain_metrics_round_and_store_nan_as_none():
    m = plain_metrics([1.0, 2.1234567891], [1.0, 2.0])  # two points: no rank correlation
    assert m["spearman"] is None and m["n"] == 2 and math.isnan(metrics([1.0, 2.0], [1.0, 2.0])["spearman"])
    assert m["mape_pct"] == round(m["mape_pct"], 6) and m["mape_pct"] == pytest.approx(3.0864, abs=1e-4)


def test_loo_predictions_fit_without_the_predicted_row():
    y = np.array([1.0, 2.0, 3.0, 10.0])
    ones = np.ones((4, 1))
    mean_fit = lambda F, v: np.array([v.mean()])  # noqa: E731  (predicts the mean of the rows it was fitted on)
    assert np.allclose(loo_predictions(mean_fit, ones, y), [5.0, 14 / 3, 13 / 3, 2.0])
    # an exact linear relation is predicted exactly by least squares on the others
    F = np.column_stack([np.ones(5), np.arange(5.0)])
    y = 0.5 + 2 * np.arange(5.0)
    lstsq = lambda F, v: np.linalg.lstsq(F, v, rcond=None)[0]  # noqa: E731
    assert np.allclose(loo_predictions(lstsq, F, y), y)
