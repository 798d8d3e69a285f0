"""The Pareto front of a study: non-dominated rows, feasible trials only."""
import numpy as np

from nas.search.front import pareto_mask


def test_pareto_mask():
    v = np.array([[1.0, 5.0], [2.0, 4.0], [1.5, 6.0], [0.5, 1.0]])
    # maximize first, minimize second
    assert pareto_mask(v, ["maximize", "minimize"]).tolist() == [False, True, False, True]
