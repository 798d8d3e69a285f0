"""Hypervolume, with one rule for its reference point: the hypervolume of a front (reports, benchmarks) and the
hypervolume each candidate would add to a front (what the FrontSampler maximises).

Values are rows of objective values; :func:`reference_point` and :func:`hypervolume` take them in their own
units with the objectives' directions, :func:`hypervolume_gain` takes them minimised (each maximised objective
negated)."""
from __future__ import annotations

import numpy as np

from nas.optuna_compat import compute_hypervolume

# The reference point's margin beyond the worst value, as a fraction of each objective's range (see
# reference_point): the report's and the sampler's differ on purpose, and each is the figure its results used.
REPORT_MARGIN = 0.05
SAMPLER_MARGIN = 0.10
MARGIN_SHORTLIST = 16  # candidates whose exact hypervolume gain is computed when there are > 2 objectives


def _signs(directions) -> np.ndarray:
    return np.array([-1.0 if d == "maximize" else 1.0 for d in directions])


def reference_point(values: np.ndarray, directions: list[str], *, margin: float) -> np.ndarray:
    """The worst value of each objective over ``values``, pushed ``margin`` x its range further out (by
    ``margin`` x |worst| where every row has the same value, by ``margin`` where that is 0 too); zeros for no rows.

    The margin is a parameter because its two callers differ on purpose. The report (``hypervolume.png``) uses
    :data:`REPORT_MARGIN` (5 %): a fixed, reproducible reference over a study's feasible trials, as the search
    benchmark's common reference is. The FrontSampler uses :data:`SAMPLER_MARGIN` (10 %), recomputed every
    trial over the front and its candidates (which set the worst values themselves): the wider strip beyond them
    keeps a candidate that extends an end of the front from gaining almost nothing. Changing either moves the
    figures measured with it (the benchmarks would have to be re-run)."""
    if len(values) == 0:
        return np.zeros(len(directions))
    signs = _signs(directions)
    v = np.asarray(values, dtype=float) * signs  # minimised
    lo, hi = v.min(0), v.max(0)
    span = np.where(hi > lo, hi - lo, np.where(hi != 0, np.abs(hi), 1.0))
    return (hi + margin * span) * signs


def hypervolume(values: np.ndarray, directions: list[str], reference: np.ndarray) -> float:
    """Hypervolume dominated by ``values`` w.r.t. ``reference`` (in the original units, directions applied); rows
    not strictly better than ``reference`` in every objective add nothing."""
    signs = _signs(directions)
    v = np.asarray(values, dtype=float) * signs
    ref = np.asarray(reference, dtype=float) * signs
    v = v[np.all(v < ref, axis=1)]
    if len(v) == 0:
        return 0.0
    return compute_hypervolume(v, ref)


def hypervolume_gain(candidates: np.ndarray, front: np.ndarray, *, margin: float) -> np.ndarray:
    """Hypervolume each candidate row would add to ``front`` (all objectives minimised). The reference point is
    the :func:`reference_point` of the front and the candidates with ``margin`` (the sampler's: SAMPLER_MARGIN).

    Exact and vectorised for two objectives; with more, exact for the :data:`MARGIN_SHORTLIST` candidates with
    the largest margin (how far a candidate is beyond the front members that dominate it in every objective
    but one), the margin itself (negative, below every exact gain) for the rest. A candidate dominated by the
    front gains its (negative) distance to it, so the nearest wins when no candidate gains."""
    every = np.vstack([candidates, front]) if len(front) else candidates
    ref = reference_point(every, ["minimize"] * every.shape[1], margin=margin)
    if len(front) == 0:
        return np.prod(ref - candidates, axis=1)
    if candidates.shape[1] == 2:
        return _gain_2d(candidates, front, ref)
    return _gain_nd(candidates, front, ref)


def _gain_2d(c: np.ndarray, front: np.ndarray, ref: np.ndarray) -> np.ndarray:
    f = front[np.argsort(front[:, 0])]
    level = np.minimum.accumulate(f[:, 1])  # attained second objective from each front x on
    starts = np.concatenate([[-np.inf], f[:, 0]])
    ends = np.concatenate([f[:, 0], [ref[0]]])
    levels = np.concatenate([[ref[1]], level])
    width = np.clip(ends[None, :] - np.maximum(c[:, :1], starts[None, :]), 0, None)
    gain = (width * np.clip(levels[None, :] - c[:, 1:2], 0, None)).sum(1)
    # dominated candidates: minus their distance to the attained front (normalised), so the nearest ranks first
    span = np.where(ref > front.min(0), ref - front.min(0), 1.0)
    idx = np.searchsorted(f[:, 0], c[:, 0], side="right") - 1
    attained = np.where(idx >= 0, level[np.clip(idx, 0, None)], ref[1])
    behind = -(c[:, 1] - attained) / span[1]
    return np.where(gain > 0, gain, np.minimum(behind, 0) - 1e-12)


def _gain_nd(c: np.ndarray, front: np.ndarray, ref: np.ndarray) -> np.ndarray:
    span = np.where(ref > front.min(0), ref - front.min(0), 1.0)
    margin = np.empty(len(c))
    for i, row in enumerate(c):
        # per objective j: among front points no worse than row in every other objective, how far row is ahead in j
        ahead = []
        for j in range(c.shape[1]):
            others = np.delete(np.arange(c.shape[1]), j)
            cover = np.all(front[:, others] <= row[others], axis=1)
            ahead.append((front[cover, j].min() - row[j]) / span[j] if cover.any() else np.inf)
        margin[i] = min(ahead)
    gain = np.where(np.isfinite(margin), np.minimum(margin, 0) - 1e-12, -1e-12)
    base = compute_hypervolume(front, ref)
    for i in np.argsort(-margin)[:MARGIN_SHORTLIST]:
        if margin[i] > 0:
            gain[i] = compute_hypervolume(np.vstack([front, c[i]]), ref) - base
    return gain
