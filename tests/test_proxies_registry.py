"""The proxy registry: every registered proxy meets the contract (finite, deterministic, seed-dependent), NaN
handling, quantization-aware probes."""
import math

import pandas as pd
import pytest
import torch

import nas.nn.build
from nas.errors import NasError
from nas.proxies import DEFAULT_PROXY, PROXIES, Scorer, available, rank, register_proxy
from nas.space import load_space

from test_proxies_common import FLOAT, small_reference, tiny  # noqa: F401  (fixtures)


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
