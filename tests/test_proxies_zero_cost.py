"""The training-free proxies: values computed by hand (or by an independent implementation) on a tiny network."""
import math

import pytest
import torch
from torch import nn

import nas.nn.build
from nas.proxies import PROXIES
from nas.proxies.registry import evaluate

from helpers_proxies import BN, FLOAT, ones_model, probe_for, tiny  # noqa: F401  (fixtures)


# --------------------------------------------------------------------------------------------------------
# hand-computed values
# --------------------------------------------------------------------------------------------------------
def test_params_and_macs_by_hand(tiny):
    p = probe_for(tiny, FLOAT)
    # stem 1x1 conv 1->2 (2 w + 4 BN), dw 3x3 on 2 ch (18 + 4), project 1x1 2->3 (6 + 6), linear 3->2 (6 + 2 bias)
    assert evaluate(PROXIES["params"], p) == 2 + 4 + 18 + 4 + 6 + 6 + 6 + 2
    # per 4x4 output position: 2 + 18 + 6 MACs, then 6 for the linear layer
    assert evaluate(PROXIES["macs"], p) == 16 * (2 + 18 + 6) + 6


def test_synflow_by_hand(tiny, ones_model):
    # ones input, ones weights: stem c per position, depthwise c^2 * taps (taps 4/6/9: sum 100 over 4x4),
    # project 2 c^3 taps per channel, pool 12.5 c^3, logits 37.5 c^3 each, R = 75 c^3. R is linear in each of
    # the 4 weight layers, so sum_w w dR/dw = R per layer: synflow = log(4 R).
    value = evaluate(PROXIES["synflow"], probe_for(tiny, FLOAT))
    assert value == pytest.approx(math.log(4 * 75 * BN ** 3), rel=1e-6)


def test_naswot_by_hand(tiny, ones_model):
    # images +1 and -1: with BN on batch statistics every unit is on for one image and off for the other,
    # so K = diag(N, N) with N = 2*16 (stem ReLU) + 2*16 (depthwise ReLU) units: log det = 2 log 64
    x = torch.stack([torch.ones(1, 4, 4), -torch.ones(1, 4, 4)])
    value = evaluate(PROXIES["naswot"], probe_for(tiny, FLOAT, (x, torch.tensor([0, 1]))))
    assert value == pytest.approx(2 * math.log(64), rel=1e-9)


def _independent_grads(tiny, text, x, y):
    m = nas.nn.build.build_model(tiny.parse(text), tiny, seed=0).train()
    halves = []
    for xs, ys in ((x[:2], y[:2]), (x[2:], y[2:])):
        m.zero_grad()
        nn.functional.cross_entropy(m(xs), ys).backward()
        halves.append([(mod.weight.detach().clone(), mod.weight.grad.clone())
                       for mod in m.modules() if isinstance(mod, (nn.Conv2d, nn.Linear))])
    return halves


def test_gradient_proxies_match_their_formulas(tiny):
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(4, 1, 4, 4, generator=g), torch.tensor([0, 1, 1, 0])
    halves = _independent_grads(tiny, FLOAT, x, y)
    mean = [(w, (g0 + g1) / 2) for (w, g0), (_, g1) in zip(*halves)]
    snip = sum(float((w * gr).abs().sum()) for w, gr in mean)
    gn = sum(float(gr.norm()) for _, gr in mean)
    zico = 0.0
    for (_, g0), (_, g1) in zip(*halves):
        a, b = g0.flatten().double(), g1.flatten().double()
        mu, sd = (a.abs() + b.abs()) / 2, (a - b).abs() / 2
        zico += math.log(float((mu[sd > 0] / sd[sd > 0]).sum()))
    for name, expected in (("snip", snip), ("grad_norm", gn), ("zico", zico)):
        assert evaluate(PROXIES[name], probe_for(tiny, FLOAT, (x, y))) == pytest.approx(expected, rel=1e-5), name


def test_meco_is_zero_for_rank_one_features_and_matches_formula(tiny):
    # a one-channel input makes the 1x1 stem's two channels proportional: correlation [[1,1],[1,1]], min eig 0
    x = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    p = probe_for(tiny, FLOAT, (x, torch.zeros(8, dtype=torch.long)))
    m = p.model(bn="train")
    feats = []
    hooks = [mod.register_forward_hook(lambda _m, _i, o: feats.append(o[0].detach()))
             for mod in m.modules() if isinstance(mod, nn.Conv2d)]
    m(x)
    for h in hooks:
        h.remove()
    expected = 0.0
    for f in feats:
        f = f.reshape(f.shape[0], -1).double()
        if f.shape[0] <= f.shape[1]:
            expected += float(torch.linalg.eigvalsh(torch.nan_to_num(torch.corrcoef(f)))[0])
    assert abs(float(torch.linalg.eigvalsh(torch.corrcoef(feats[0].reshape(2, -1).double()))[0])) < 1e-9
    assert evaluate(PROXIES["meco"], p) == pytest.approx(expected, abs=1e-9)


def test_zen_matches_its_formula(tiny):
    p = probe_for(tiny, FLOAT, data="noise", batch_size=4)
    x, _ = p.noise(8)
    m = nas.nn.build.build_model(tiny.parse(FLOAT), tiny, seed=0).train()
    g = torch.Generator().manual_seed(0)  # Zen-NAS init: conv/linear weights N(0, 1) in module order
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g))
    feats = m.layers[:2]  # stem + block: everything before the global pool
    bn_in = []
    hooks = [b.register_forward_pre_hook(lambda _m, i: bn_in.append(i[0].detach()))
             for b in m.modules() if isinstance(b, nn.BatchNorm2d)]
    a = feats(x[:4])
    for h in hooks:
        h.remove()
    b = feats(x[:4] + 0.01 * x[4:])
    expected = math.log(float((a - b).abs().sum(dim=(1, 2, 3)).mean()))
    expected += sum(0.5 * math.log(float(t.var(dim=(0, 2, 3), unbiased=False).mean()) + 1e-12) for t in bn_in)
    assert evaluate(PROXIES["zen"], p) == pytest.approx(expected, rel=1e-5)


def test_zen_ignores_the_networks_own_init(tiny, monkeypatch):
    """Zen re-draws every weight from N(0, 1): scaling the built weights changes nothing (the fan-out init's
    scale leaking into the BN term was what made zen anti-correlated with accuracy)."""
    before = evaluate(PROXIES["zen"], probe_for(tiny, FLOAT, data="noise", batch_size=4))
    real = nas.nn.build.build_model

    def build(arch, space=None, *, seed=0):
        m = real(arch, space, seed=seed)
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, nn.Conv2d):
                    mod.weight.mul_(10.0)
        return m

    monkeypatch.setattr(nas.nn.build, "build_model", build)
    after = evaluate(PROXIES["zen"], probe_for(tiny, FLOAT, data="noise", batch_size=4))
    assert after == pytest.approx(before, rel=1e-9)
