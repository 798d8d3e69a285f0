"""The FrontSampler's surrogate of the proxy score: a Bayesian linear model on features of an architecture.

Features (:func:`features`): one-hot choices, per-field counts over the blocks, log params, log MACs and the log
latency on each device. :class:`BayesianRidge` is ridge regression on standardised features with the prior's
strength chosen by generalised cross-validation; it is fitted from running sums (:class:`SufficientStats`), so a
refit costs the same at trial 10 and trial 10,000, and predicts a mean and an epistemic standard deviation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GCV_GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def vocabularies(space) -> tuple[dict, dict]:
    """Column of each (choice, option) one-hot, and of each (block field, value) count over the blocks."""
    vocab: dict[tuple, int] = {}
    for name, options in space.choice_options().items():
        for o in options:
            vocab[(name, o)] = len(vocab)
    values: dict[str, set] = {}
    for st in space.stages:
        for bs in {id(st.first_block): st.first_block, id(st.block): st.block}.values():
            for alt in bs.alternatives:
                for f, opts in alt.choices:
                    values.setdefault(f, set()).update(opts)
                values.setdefault("op", set()).add(alt.op)
    fields = {}
    for f in sorted(values):
        if len(values[f]) > 1:
            for v in sorted(values[f], key=repr):
                fields[(f, v)] = len(fields)
    return vocab, fields


class SufficientStats:
    """Running sums of a regression's data: n, sum x, sum x x', sum y, sum x y, sum y^2."""

    def __init__(self, d: int):
        self.n, self.sx, self.sxx = 0, np.zeros(d), np.zeros((d, d))
        self.sy, self.sxy, self.syy = 0.0, np.zeros(d), 0.0

    def add(self, x: np.ndarray, y: float) -> None:
        self.n += 1
        self.sx += x
        self.sxx += np.outer(x, x)
        self.sy += y
        self.sxy += x * y
        self.syy += y * y


def features(arch, answers: dict, metrics: dict, vocab: dict, fields: dict, devices) -> np.ndarray:
    """The surrogate's input for ``arch`` (drawn with ``answers``; ``metrics``: its cheap metrics): the columns
    of :func:`vocabularies` (``vocab``, ``fields``), then log params, log MACs and the log latency on each of
    ``devices``."""
    x = np.zeros(len(vocab) + len(fields) + 2 + len(devices))
    for item in answers.items():
        col = vocab.get(item)
        if col is not None:
            x[col] = 1.0
    base = len(vocab)
    for b in arch.blocks:
        for f, v in b.to_dict().items():
            col = fields.get((f, v))
            if col is not None:
                x[base + col] += 1.0
    tail = len(vocab) + len(fields)
    x[tail] = math.log1p(metrics["params"])
    x[tail + 1] = math.log1p(metrics["macs"])
    for i, d in enumerate(devices):
        x[tail + 2 + i] = math.log(max(1e-9, float(metrics[f"latency_ms.{d}"])))
    return x


@dataclass
class BayesianRidge:
    """Linear regression with a Gaussian prior (ridge) on standardised features: mean and epistemic standard
    deviation of a prediction; the prior's strength is chosen by generalised cross-validation."""

    mu: np.ndarray
    scale: np.ndarray
    y_mean: float
    w: np.ndarray
    chol: np.ndarray  # Cholesky factor of Z'Z + lambda I
    noise: float  # residual standard deviation

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> "BayesianRidge":
        stats = SufficientStats(x.shape[1])
        for row, target in zip(x, y):
            stats.add(row, float(target))
        return cls.from_stats(stats)

    @classmethod
    def from_stats(cls, st: "SufficientStats") -> "BayesianRidge":
        """Fit from running sums (cost independent of the number of points: what a long study needs)."""
        n = st.n
        mu = st.sx / n
        var = np.maximum(np.diag(st.sxx) / n - mu ** 2, 0.0)
        scale = np.sqrt(var)
        scale[scale < 1e-9] = 1.0
        y_mean = st.sy / n
        gram = (st.sxx - n * np.outer(mu, mu)) / np.outer(scale, scale)  # Z'Z of the standardised features
        zty = (st.sxy - n * mu * y_mean) / scale
        yy = max(st.syy - n * y_mean ** 2, 0.0)
        e, v = np.linalg.eigh(gram)  # symmetric: robust where an SVD of Z may not converge
        keep = e > 1e-10 * max(e.max(), 1e-12)
        e, proj = e[keep], v[:, keep].T @ zty
        uty2 = proj ** 2 / e  # (U'y)^2 of Z's thin SVD
        best = None
        for lam in GCV_GRID:
            shrink = e / (e + lam * n)
            resid = float(yy - ((2 * shrink - shrink ** 2) * uty2).sum())
            dof = n - shrink.sum()
            gcv = resid / max(dof, 1e-3) ** 2
            if best is None or gcv < best[0]:
                best = (gcv, lam * n, max(resid, 0.0) / max(dof, 1.0))
        _, lam, noise_var = best
        a = gram + lam * np.eye(len(mu))
        chol = np.linalg.cholesky(a)
        w = np.linalg.solve(a, zty)
        noise = math.sqrt(noise_var) if noise_var > 0 else (math.sqrt(yy / n) or 1.0)
        return cls(mu, scale, y_mean, w, chol, noise)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from scipy.linalg import solve_triangular

        z = (x - self.mu) / self.scale
        mean = self.y_mean + z @ self.w
        half = solve_triangular(self.chol, z.T, lower=True)
        std = self.noise * np.sqrt((half ** 2).sum(0))
        return mean, std
