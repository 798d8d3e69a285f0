"""experiments/proxies/proxies_on_trained.py: the ground truth it reads and the partial rank correlation."""
import numpy as np
import pytest

from experiments.proxies import proxies_on_trained as mod


def test_reads_each_architecture_of_the_three_epoch_recipe_once_with_its_trainings():
    nets = mod.trained_networks()
    assert nets["arch"].is_unique and len(nets) == 17 and (nets["seeds"] == 2).all()
    assert nets["acc"].between(0.5, 1).all()
    assert -1 <= mod.retest_spearman() <= 1


def test_partial_spearman_removes_what_the_control_explains():
    rng = np.random.default_rng(0)
    size = rng.normal(size=200)
    truth, score = size + 0.1 * rng.normal(size=200), size + 0.1 * rng.normal(size=200)
    assert abs(mod.partial_spearman(truth, score, size)) < 0.2  # both follow size only
    own = rng.normal(size=200)
    assert mod.partial_spearman(size + own, size + own + 0.1 * rng.normal(size=200), size) > 0.8
    assert mod.partial_spearman(truth, score, rng.normal(size=200)) == pytest.approx(
        np.corrcoef(np.argsort(np.argsort(truth)), np.argsort(np.argsort(score)))[0, 1], abs=0.05)
