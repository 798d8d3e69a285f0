"""Proxies: hand-computed values on a tiny network, determinism, NaN handling, caching, quantization, CLI."""
import math

import pandas as pd
import pytest
import torch
from torch import nn

import nas.nn.build
from nas.errors import NasError
from nas.proxies import DEFAULT_PROXY, PROXIES, Scorer, available, rank, register_proxy
from nas.proxies.registry import Inputs, Probe, evaluate
from nas.space import load_space

from conftest import run_cli


TINY_YAML = """\
name: tiny
description: Tiny space for proxy tests.
input: {resolution: 4, channels: 1}
num_classes: 2
block: {op: ir, kernel: 3, expand: [1, 2], act: [relu, hswish], wbits: [4, 8, 32], abits: [8, 32]}
stem:
  - {op: conv, kernel: 1, stride: 1, width: 2, act: relu}
stages:
  - {width: 3, depth: 1, stride: 1}
head:
  - {op: pool}
  - {op: linear}
"""
FLOAT = "ir_e1_relu_w32_a32"
BN = 1 / math.sqrt(1 + 1e-5)  # eval-mode BatchNorm of a fresh network: x / sqrt(1 + eps)


@pytest.fixture(autouse=True)
def small_reference(monkeypatch):
    """The ensemble's reference sample: 8 architectures instead of 32 keeps these tests fast."""
    import nas.proxies.scorer

    monkeypatch.setattr(nas.proxies.scorer, "REFERENCE_SIZE", 8)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("spaces") / "tiny.yaml"
    path.write_text(TINY_YAML)
    return load_space(path)


@pytest.fixture
def ones_model(monkeypatch):
    """Every network built is the tiny one with all conv/linear weights set to 1."""
    real = nas.nn.build.build_model

    def build(arch, space=None, *, seed=0):
        m = real(arch, space, seed=seed)
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, (nn.Conv2d, nn.Linear)):
                    mod.weight.fill_(1.0)
        return m

    monkeypatch.setattr(nas.nn.build, "build_model", build)


def probe_for(space, text, batch=None, *, batch_size=None, data="digits", seed=0):
    inputs = Inputs(space, data, seed)
    if batch is not None:
        inputs._cache[("data", len(batch[0]))] = batch
        batch_size = len(batch[0])
    return Probe(space.parse(text), space, inputs, seed=seed, batch_size=batch_size)


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


# --------------------------------------------------------------------------------------------------------
# every registered proxy: finite, deterministic, seed-dependent where it uses weights or data
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PROXIES))
def test_every_proxy_is_finite_and_deterministic(tiny, name):
    archs = ["ir_e2_relu_w32_a32", "ir_e1_hswish_w32_a32"]
    a = Scorer(tiny, [name], data="digits", seed=0).score_many(archs, progress=False)
    b = Scorer(tiny, [name], data="digits", seed=0).score_many(archs, progress=False)
    assert a[name].notna().all() and a[name].map(math.isfinite).all()
    pd.testing.assert_frame_equal(a, b)
    if PROXIES[name].input != "none":
        c = Scorer(tiny, [name], data="digits", seed=1).score_many(archs, progress=False)
        assert not c[name].equals(a[name])


def test_public_api(tiny):
    assert DEFAULT_PROXY in available()
    assert {"params", "macs", "synflow", "naswot", "snip", "grad_norm", "zen", "zico", "meco",
            "ensemble"} <= set(available())
    for p in PROXIES.values():
        assert p.summary and p.input in ("none", "noise", "batch", "batch+labels")
    with pytest.raises(NasError, match="unknown proxy 'nope'"):
        Scorer(tiny, ["nope"])
    with pytest.raises(NasError, match="train:EPOCHS"):
        Scorer(tiny, ["train:x"])
    with pytest.raises(NasError, match="unknown dataset"):
        Scorer(tiny, ["params"], data="cifar")


def test_cache_and_single_architecture_ensemble(tiny):
    s = Scorer(tiny, ["ensemble", "synflow"], data="digits")
    first = s.score("ir_e2_relu_w32_a32")
    spent = dict(s.seconds)
    assert s.score(tiny.parse("ir_e2_relu_w32_a32")) == first  # cache hit by canonical architecture
    assert s.seconds == spent
    # the ensemble of one architecture does not depend on what else was scored before
    t = Scorer(tiny, ["ensemble", "synflow"], data="digits")
    t.score_many(["ir_e1_hswish_w8_a8", "ir_e1_relu_w4_a32"], progress=False)
    assert t.score("ir_e2_relu_w32_a32") == first


# --------------------------------------------------------------------------------------------------------
# NaN: reported as such, ranked last, never raised
# --------------------------------------------------------------------------------------------------------
def test_degenerate_network_scores_nan_and_ranks_last(tiny, monkeypatch):
    real = nas.nn.build.build_model

    def dead(arch, space=None, *, seed=0):  # every weight zero: no signal, singular kernels
        m = real(arch, space, seed=seed)
        if arch.stages[0].blocks[0].act == "hswish":
            with torch.no_grad():
                for p in m.parameters():
                    p.zero_()
        return m

    monkeypatch.setattr(nas.nn.build, "build_model", dead)
    # (zen is not here: it re-draws every weight from N(0, 1), so zeroed built weights do not reach it)
    df = Scorer(tiny, ["synflow", "naswot"], data="digits").score_many(
        ["ir_e1_hswish_w32_a32", FLOAT], progress=False)
    assert df.loc[0, ["synflow", "naswot"]].isna().all()
    assert df.loc[1, ["synflow", "naswot"]].notna().all()
    for col in ("synflow", "naswot"):
        assert rank(df[col]).tolist() == [2.0, 1.0]


def test_proxy_returning_inf_or_raising_becomes_nan(tiny):
    calls = []

    @register_proxy("_test_bad", input="none")
    def bad(probe):
        """Test proxy: inf, then an exception."""
        calls.append(1)
        if len(calls) == 1:
            return math.inf
        raise RuntimeError("linalg failed")

    try:
        df = Scorer(tiny, ["_test_bad"]).score_many([FLOAT, "ir_e2_relu_w32_a32"], progress=False)
        assert df["_test_bad"].isna().all()
        assert rank(pd.Series([1.0, math.nan, -math.inf, 3.0])).tolist() == [2.0, 3.0, 3.0, 1.0]
    finally:
        del PROXIES["_test_bad"]


# --------------------------------------------------------------------------------------------------------
# quantization-aware scoring
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["synflow", "naswot", "snip", "zen", "ensemble"])
def test_quantized_architecture_scores_differently_from_float_twin(tiny, name):
    s = Scorer(tiny, [name], data="digits")
    f = s.score("ir_e2_relu_w32_a32")[name]
    w4 = s.score("ir_e2_relu_w4_a32")[name]
    a8 = s.score("ir_e2_relu_w8_a8")[name]
    assert f != w4 and f != a8 and w4 != a8


def test_quantized_twin_in_a_real_space():
    space = load_space("mobilenet-c10")
    base = space.sample_many(1, seed=3)[0]
    from dataclasses import replace

    from nas.space.arch import Stage

    def with_bits(w, a):
        return replace(base, stages=tuple(Stage(st.width, tuple(replace(b, wbits=w, abits=a) for b in st.blocks))
                                          for st in base.stages))

    s = Scorer(space, ["synflow"], data="noise")
    f, q = s.score(with_bits(32, 32))["synflow"], s.score(with_bits(4, 8))["synflow"]
    assert math.isfinite(f) and math.isfinite(q) and f != q


# --------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------
def test_cli_score_writes_columns(tiny, tmp_path, capsys):
    inp = tmp_path / "in.csv"
    pd.DataFrame({"arch": [FLOAT, "ir_e2_hswish_w4_a8", FLOAT]}).to_csv(inp, index=False)
    out = tmp_path / "out.csv"
    rc, stdout, err = run_cli(capsys, "score", "--space", tiny.path, "--archs", inp, "--proxy", "macs,synflow",
                              "--data", "digits", "--seed", "1", "--quiet", "-o", out)
    assert rc == 0, err
    df = pd.read_csv(out)
    assert list(df.columns) == ["arch", "canonical", "macs", "synflow", "score"]
    assert len(df) == 3 and df["score"].notna().all()
    assert df.loc[0, "synflow"] == df.loc[2, "synflow"]
    assert "wrote 3 rows" in stdout


def test_cli_score_errors(tiny, tmp_path, capsys):
    inp = tmp_path / "in.csv"
    pd.DataFrame({"arch": [FLOAT]}).to_csv(inp, index=False)
    rc, _, err = run_cli(capsys, "score", "--space", tiny.path, "--archs", inp, "--proxy", "nasw0t",
                         "-o", tmp_path / "o.csv")
    assert rc == 2 and "unknown proxy 'nasw0t'" in err and len(err.strip().splitlines()) == 1
    pd.DataFrame({"arch": ["ir_e9"]}).to_csv(inp, index=False)
    rc, _, err = run_cli(capsys, "score", "--space", tiny.path, "--archs", inp, "--proxy", "macs",
                         "-o", tmp_path / "o.csv")
    assert rc == 2 and "row 1" in err
    rc, out, _ = run_cli(capsys, "score", "--list")
    assert rc == 0 and "naswot" in out and "(default)" in out
