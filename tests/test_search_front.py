"""The Pareto front of a study: non-dominated rows, feasible trials only."""
import numpy as np

from nas.search.front import pareto_mask


def test_pareto_mask():
    v = np.array([[1.0, 5.0], [2.0, 4.0], [1.5, 6.0], [0.5, 1.0]])
    # maximize first, minimize second
    assert pareto_mask(v, ["maximize", "minimize"]).tolist() == [False, True, False, True]


def test_front_keeps_feasible_unique_finite_non_dominated_trials_sorted_by_latency():
    import pandas as pd

    from nas.search.front import front
    from nas.search.objectives import Objectives

    df = pd.DataFrame({
        "trial": [0, 1, 2, 3, 4, 5],
        "arch": list("abcdef"),
        "proxy.params": [5.0, 9.0, 7.0, 99.0, 99.0, float("nan")],
        "latency_ms.raspi4": [1.0, 9.0, 3.0, 0.5, 0.5, 0.1],
        "feasible": [True, True, True, False, True, True],
        "duplicate": [False, False, False, False, True, False],
    })
    best, cols, dirs = front(df, Objectives(("proxy", "latency"), ("raspi4",), "params"))
    assert cols == ["proxy.params", "latency_ms.raspi4"] and dirs == ["maximize", "minimize"]
    # 3 infeasible, 4 a duplicate, 5 NaN: out; of 0, 1, 2 none dominates another
    assert best["trial"].tolist() == [0, 2, 1]
    config = {"objectives": ["proxy", "latency"], "devices": ["raspi4"], "proxy": "params"}
    assert front(df, config)[0]["trial"].tolist() == [0, 2, 1]


def test_pareto_mask_matches_the_definition_with_ties_and_mixed_directions():
    import numpy as np

    from nas.search.front import pareto_mask

    rng = np.random.default_rng(0)
    for dims in (2, 3, 4):
        v = rng.integers(0, 6, size=(120, dims)).astype(float)  # small integers: many ties and duplicates
        dirs = ["maximize" if j % 2 == 0 else "minimize" for j in range(dims)]
        m = v * np.array([-1.0 if d == "maximize" else 1.0 for d in dirs])
        brute = np.array([not np.any(np.all(m <= m[i], axis=1) & np.any(m < m[i], axis=1)) for i in range(len(m))])
        assert (pareto_mask(v, dirs) == brute).all()
