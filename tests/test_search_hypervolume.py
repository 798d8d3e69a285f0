"""nas.search.hypervolume: one reference-point rule whose margin is a parameter (the report's 5 %, the sampler's
10 %, each the figure its results were measured with), the hypervolume of a front, and the exact gain a
candidate would add to one."""
import numpy as np
import pytest

from nas.optuna_compat import compute_hypervolume
from nas.search.front import pareto_mask
from nas.search.hypervolume import REPORT_MARGIN, SAMPLER_MARGIN, hypervolume, hypervolume_gain, reference_point


def test_the_report_and_the_sampler_keep_their_margins():
    assert (REPORT_MARGIN, SAMPLER_MARGIN) == (0.05, 0.10)


def test_reference_point_is_the_worst_value_pushed_out_by_the_margin_of_the_range():
    values = np.array([[0.9, 10.0], [0.5, 30.0], [0.7, 20.0]])
    dirs = ["maximize", "minimize"]
    assert reference_point(values, dirs, margin=REPORT_MARGIN) == pytest.approx([0.5 - 0.05 * 0.4, 30 + 0.05 * 20])
    assert reference_point(values, dirs, margin=SAMPLER_MARGIN) == pytest.approx([0.5 - 0.1 * 0.4, 30 + 0.1 * 20])
    # every row the same: the margin of the value's size (of 1 where it is 0); no rows: zeros
    assert reference_point(np.array([[2.0, 0.0]]), dirs, margin=0.1) == pytest.approx([1.8, 0.1])
    assert reference_point(np.zeros((0, 2)), dirs, margin=0.1).tolist() == [0.0, 0.0]


def test_hypervolume_by_hand_in_the_objectives_own_directions():
    # minimised: (1, 3) and (2, 1) up to (4, 4) cover 3 x 1 + 2 x 2 = 7; the first objective is maximised here
    values, dirs = np.array([[-1.0, 3.0], [-2.0, 1.0], [-5.0, 9.0]]), ["maximize", "minimize"]
    assert hypervolume(values, dirs, np.array([-4.0, 4.0])) == pytest.approx(7.0)  # (-5, 9) is beyond: nothing
    assert hypervolume(values[2:], dirs, np.array([-4.0, 4.0])) == 0.0


def test_hypervolume_gain_is_exact_in_two_and_three_objectives():
    rng = np.random.default_rng(0)
    for dims in (2, 3):
        pts = rng.random((40, dims))
        front = pts[pareto_mask(pts, ["minimize"] * dims)][:8]
        cands = rng.random((30, dims)) * 0.9
        gain = hypervolume_gain(cands, front, margin=SAMPLER_MARGIN)
        every = np.vstack([cands, front])
        lo, hi = every.min(0), every.max(0)
        ref = hi + 0.1 * (hi - lo)  # the sampler's reference: 10 % beyond the worst of the front and candidates
        base = compute_hypervolume(front, ref)
        exact = np.array([compute_hypervolume(np.vstack([front, c]), ref) - base for c in cands])
        positive = exact > 1e-12
        if dims == 2:
            assert np.allclose(gain[positive], exact[positive])
        else:  # the shortlist is exact, the rest rank below every positive gain
            assert np.allclose(gain[gain > 0], exact[gain > 0]) and (gain > 0).sum() >= min(positive.sum(), 16)
        assert (gain[~positive] <= 0).all() and np.argmax(gain) == np.argmax(exact)
