"""nas.train.batchnorm: BatchNorm statistics recomputed as a plain average over training images, and kept only
where they do not lower the validation accuracy of the run that trained the network."""
import math

import numpy as np
import pytest
import torch

from nas.data import datasets
from nas.nn.build import build_model
from nas.train.batchnorm import recalibrate_bn, recalibrate_bn_checked
from nas.train.loop import evaluate, split_indices


@pytest.fixture(scope="module")
def data():
    return datasets.load("digits", split="train", resolution=8, channels=1)


def _bns(model):
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def _stats(model):
    return {k: v.clone() for k, v in model.state_dict().items() if k.endswith(("running_mean", "running_var"))}


def test_recalibrate_bn_is_the_plain_average_over_the_seeded_images(train_space, data):
    model = build_model(train_space.parse("ir_e2"), train_space, seed=0)
    bn = _bns(model)[0]
    momenta = [m.momentum for m in _bns(model)]
    idx = np.random.default_rng(3 + 17).choice(len(data), size=64, replace=False)
    seen = []
    hook = bn.register_forward_pre_hook(lambda m, inp: seen.append(inp[0].detach().clone()))
    model.eval()
    with torch.no_grad():
        model(data.batch(idx)[0])
    hook.remove()
    x = seen[0]
    recalibrate_bn(model, data, 64, seed=3)  # one batch of 64: the plain mean and (unbiased) variance of it
    assert torch.allclose(bn.running_mean, x.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(bn.running_var, x.var((0, 2, 3), unbiased=True), rtol=1e-4, atol=1e-6)
    assert [m.momentum for m in _bns(model)] == momenta and not model.training


def test_recalibrated_statistics_are_kept_only_where_they_do_not_lower_the_validation_accuracy(train_space, data):
    arch = train_space.parse("ir_e2")
    model = build_model(arch, train_space, seed=0)
    n_val = 300
    now = evaluate(model, data, indices=split_indices(len(data), n_val, 0)[1])
    before = _stats(model)
    worse = recalibrate_bn_checked(model, data, 64, seed=0, result={"accuracy": 1.01, "n_val": n_val})
    assert worse["kept"] is False and worse["samples"] == 64 and worse["val_accuracy_training_stats"] == 1.01
    assert all(torch.equal(v, before[k]) for k, v in _stats(model).items())  # the training statistics back
    assert evaluate(model, data, indices=split_indices(len(data), n_val, 0)[1]) == now
    for accuracy in (0.0, math.nan):  # not lower (a NaN training accuracy: nothing to keep)
        record = recalibrate_bn_checked(model, data, 64, seed=0, result={"accuracy": accuracy, "n_val": n_val})
        assert record["kept"] is True
        assert any(not torch.equal(v, before[k]) for k, v in _stats(model).items())
