"""nas.search.surrogate: the FrontSampler's Bayesian ridge surrogate of the proxy score."""
import numpy as np

from nas.search.surrogate import BayesianRidge, SufficientStats


def test_bayesian_ridge_fits_a_linear_score_and_is_unsure_far_from_data():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2, size=(80, 12)).astype(float)
    w = rng.normal(size=12)
    y = x @ w + 0.01 * rng.normal(size=80)
    model = BayesianRidge.fit(x, y)
    mean, std = model.predict(x[:10])
    assert np.corrcoef(mean, y[:10])[0, 1] > 0.99
    _, far = model.predict(5 * np.ones((1, 12)))
    assert far[0] > 5 * std.mean()


def test_a_fit_from_running_sums_is_the_fit_of_the_data():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(50, 6)), rng.normal(size=50)
    stats = SufficientStats(6)
    for row, target in zip(x[::-1], y[::-1]):  # added one at a time, in another order
        stats.add(row, float(target))
    a, b = BayesianRidge.fit(x, y).predict(x[:5]), BayesianRidge.from_stats(stats).predict(x[:5])
    assert np.allclose(a[0], b[0]) and np.allclose(a[1], b[1])
