"""Which K architectures to measure on a new device so that ``nas lut adapt`` learns the most.

The transferred model is linear in whole-network features (each source table's sum, MACs, params, kernels,
activations, layers: :class:`nas.latency.transfer.model.Features`). Its fit is best determined when the measured
architectures spread over that feature space rather than cluster in its middle (random samples do: sums of
22 independent choices concentrate). So: draw a large seeded random pool, standardise the log features, and
pick K architectures by greedy farthest-point selection (each next pick is the pool member farthest from all
picked so far). (k-means medoids were tried first: they are representative, not spread, and their range was
narrower than a random set's.) Deterministic under ``seed``.
"""
from __future__ import annotations

import numpy as np

from nas.errors import NasError
from nas.latency.transfer.adapt import MIN_K, default_sources, load_sources
from nas.latency.transfer.model import Features
from nas.space import SearchSpace
from nas.space.arch import Architecture


def pool_features(features: Features, archs) -> np.ndarray:
    """Standardised log whole-network features (the constant and constant columns dropped)."""
    f = np.log(features.matrix(archs)[:, :-1] + 1e-9)
    std = f.std(axis=0)
    keep = std > 1e-12
    return (f[:, keep] - f[:, keep].mean(axis=0)) / std[keep]


def pick_diverse(x: np.ndarray, n: int, *, seed: int = 0) -> list[int]:
    """Indices of ``n`` rows of ``x`` spread over it: greedy farthest-point (maximin) selection, started from
    a seeded random row. Extremes come first, which is what pins down a linear model's coefficients."""
    if n >= len(x):
        return list(range(len(x)))
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(x)))]
    dist = ((x - x[chosen[0]]) ** 2).sum(axis=1)
    while len(chosen) < n:
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, ((x - x[i]) ** 2).sum(axis=1))
    return sorted(chosen)


def suggest(space: SearchSpace, n: int, *, seed: int = 0, sources: list[str] | None = None,
            dtype: str | None = None, pool: int | None = None,
            candidates: list[Architecture] | None = None) -> list[Architecture]:
    """``n`` distinct architectures to measure (from ``candidates`` or a random pool of ``pool``), spread over
    the features of ``sources`` (default: every table that covers the space)."""
    if n < MIN_K:
        raise NasError(f"must be at least {MIN_K}, got {n}", argument="n", fix="10-20 is a good start")
    names = sources or default_sources(space, dtype)
    if not names:
        raise NasError(f"no table covers space {space.name}", argument="space",
                       fix="profile one (`nas lut profile`) or choose a space that `nas lut list` shows")
    features = Features(load_sources(names, space, dtype), space)
    if candidates is None:
        size = pool or max(2000, 40 * n)
        candidates = list(dict.fromkeys(space.sample_many(size, seed=seed)))
    if len(candidates) < n:
        raise NasError(f"only {len(candidates)} distinct candidate architectures for {n}", argument="n",
                       fix="ask for fewer, or draw a larger pool")
    idx = pick_diverse(pool_features(features, candidates), n, seed=seed)
    return [candidates[i] for i in idx]
