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

from helpers_proxies import TINY_YAML, FLOAT, small_reference, tiny  # noqa: F401  (fixtures)


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


def test_proxy_returning_inf_scores_nan_but_raising_is_an_error(tiny):
    """inf (or NaN) from a proxy is a degenerate network's score: NaN, ranked last. An exception from proxy
    code on a network whose activations are finite is the proxy's fault. Regression (bug 6): it became NaN,
    then the worst objective value, so a broken proxy still gave a "working" search."""
    calls = []

    @register_proxy("_test_bad", input="none")
    def bad(probe):
        """Test proxy: inf, then an exception."""
        calls.append(1)
        if len(calls) == 1:
            return math.inf
        raise RuntimeError("linalg failed")

    try:
        s = Scorer(tiny, ["_test_bad"])
        assert math.isnan(s.score(FLOAT)["_test_bad"])
        with pytest.raises(NasError, match=r"proxy '_test_bad' failed on architecture ir_e2_relu_w32_a32 "
                                           r"\(RuntimeError: linalg failed\)") as err:
            s.score("ir_e2_relu_w32_a32")
        assert err.value.argument == "proxies" and isinstance(err.value.__cause__, RuntimeError)
        assert rank(pd.Series([1.0, math.nan, -math.inf, 3.0])).tolist() == [2.0, 3.0, 3.0, 1.0]
    finally:
        del PROXIES["_test_bad"]


def test_proxy_raising_on_a_degenerate_network_scores_nan(tiny, monkeypatch):
    """The same exception (a torch.linalg error) is NaN when the network it was computed on produced NaN: the
    activations decide, not the exception type."""
    real = nas.nn.build.build_model

    def nan_weights(arch, space=None, *, seed=0):
        m = real(arch, space, seed=seed)
        if arch.stages[0].blocks[0].act == "hswish":
            with torch.no_grad():
                for p in m.parameters():
                    p.fill_(math.nan)
        return m

    monkeypatch.setattr(nas.nn.build, "build_model", nan_weights)

    @register_proxy("_test_eig", input="batch", batch_size=4, bn="train")
    def eig(probe):
        """Test proxy: smallest eigenvalue of the logits' Gram matrix (torch.linalg raises on NaN)."""
        x, _ = probe.batch(4)
        with torch.no_grad():
            f = probe.model(bn="train")(x).double()
        return float(torch.linalg.eigvalsh(f @ f.T)[0])

    try:
        with pytest.raises(RuntimeError):  # what the proxy raises on a NaN matrix
            torch.linalg.eigvalsh(torch.full((4, 4), math.nan, dtype=torch.float64))
        df = Scorer(tiny, ["_test_eig"], data="digits").score_many(["ir_e1_hswish_w32_a32", FLOAT], progress=False)
        assert math.isnan(df.loc[0, "_test_eig"]) and math.isfinite(df.loc[1, "_test_eig"])
    finally:
        del PROXIES["_test_eig"]


def test_proxy_returning_a_non_number_is_an_error(tiny):
    @register_proxy("_test_text", input="none")
    def text(probe):
        """Test proxy: not a number."""
        return "high"

    try:
        with pytest.raises(NasError, match=r"proxy '_test_text' failed on architecture ir_e1_relu_w32_a32 "
                                           r"\(ValueError"):
            Scorer(tiny, ["_test_text"]).score(FLOAT)
    finally:
        del PROXIES["_test_text"]


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
# inputs at each architecture's own resolution
# --------------------------------------------------------------------------------------------------------
MULTI_RES_YAML = (TINY_YAML.replace("name: tiny\n", "name: tiny-res\n")
                  .replace("Tiny space for proxy tests.", "Tiny space with two input resolutions.")
                  .replace("input: {resolution: 4,", "input: {resolution: [4, 8],")
                  .replace("act: [relu, hswish], wbits: [4, 8, 32], abits: [8, 32]}", "act: relu}"))


def test_every_architecture_gets_inputs_at_its_own_resolution(tmp_path):
    """Regression (bug 1): proxies fed every architecture images at the space's first resolution, so an r8
    candidate of a space with resolutions 4 and 8 was scored on 4-px images."""
    from nas.data.datasets import for_space
    from nas.proxies.registry import Inputs, Probe, evaluate

    path = tmp_path / "tiny_res.yaml"
    path.write_text(MULTI_RES_YAML)
    space = load_space(path)
    inputs = Inputs(space, "digits", 0)
    probes = {text: Probe(space.parse(text), space, inputs, seed=0)
              for text in ("r4/ir_e1", "r8/ir_e1", "r8/ir_e2")}
    for text, probe in probes.items():
        res = int(text[1])
        assert probe.batch(6)[0].shape == (6, 1, res, res) and probe.noise(6)[0].shape == (6, 1, res, res)
    # one resolution, one set of images (same seed): every r8 architecture sees the same batch
    assert torch.equal(probes["r8/ir_e1"].batch(6)[0], probes["r8/ir_e2"].batch(6)[0])
    assert torch.equal(probes["r8/ir_e1"].batch(6)[0], for_space(space, "digits", resolution=8).sample(6, seed=0)[0])
    # and the proxy value is the one computed on 8-px images
    naswot_8px = Probe(space.parse("r8/ir_e1"), space, inputs, seed=0)
    naswot_4px = Probe(space.parse("r8/ir_e1"), space, inputs, seed=0)
    naswot_4px.batch = lambda n: for_space(space, "digits", resolution=4).sample(n, seed=0)
    assert evaluate(PROXIES["naswot"], naswot_8px) != evaluate(PROXIES["naswot"], naswot_4px)
    assert Scorer(space, ["naswot"], data="digits").score("r8/ir_e1")["naswot"] == evaluate(PROXIES["naswot"], naswot_8px)


def test_ofa_candidates_are_scored_on_their_own_resolution():
    """Bug 1 as a search met it: ofa-mbv3 (resolutions 160..224) fed every candidate 160-px images."""
    from nas.proxies.registry import Inputs, Probe

    space = load_space("ofa-mbv3")
    inputs = Inputs(space, "noise", 0)
    for arch in space.sample_many(6, seed=0):
        assert Probe(arch, space, inputs, seed=0).noise(2)[0].shape == (2, 3, arch.resolution, arch.resolution)
    assert len({a.resolution for a in space.sample_many(6, seed=0)}) > 1


def test_item16_user_data_smaller_than_the_proxy_batch_is_refused_naming_data_and_batch(tiny, tmp_path, capsys):
    """8 training images and naswot's batch of 16: drawn with repeats the batch held duplicate images and every
    architecture scored NaN (blamed on the proxy). Now an error naming the data and the batch size; a batch that
    fits scores."""
    import numpy as np

    from conftest import run_cli

    rng = np.random.default_rng(0)
    data = tmp_path / "small.npz"
    np.savez(data, x=rng.integers(0, 255, (10, 6, 6), dtype=np.uint8), y=np.array([0, 1] * 5))
    with pytest.raises(NasError, match=rf"^data '{data}': has 8 training images, fewer than the proxy batch of 16 "
                                       r"\(fix: add images, or .* batch_size=8 "):
        Scorer(tiny, ["naswot"], data=str(data)).score(FLOAT)
    assert math.isfinite(Scorer(tiny, ["naswot"], data=str(data), batch_size=8).score(FLOAT)["naswot"])
    archs = tmp_path / "a.csv"
    archs.write_text(f"arch\n{FLOAT}\n")
    rc, _, err = run_cli(capsys, "score", "--space", tiny.path, "--archs", archs, "--proxy", "naswot", "--data", data,
                         "-o", tmp_path / "s.csv", "--quiet")
    assert rc == 2 and err.startswith(f"nas: error: data '{data}': has 8 training images") and "--batch-size 8" in err


# --------------------------------------------------------------------------------------------------------
# definition versions: what a study records so that it never mixes two definitions of one proxy
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PROXIES))
def test_every_proxy_past_version_1_says_what_changed(name):
    proxy = PROXIES[name]
    assert proxy.version >= 1 and (proxy.version == 1) == (not proxy.changed)


def test_a_combined_proxy_records_its_components_versions():
    from nas.proxies import definition_versions

    assert definition_versions(["ensemble", "train:2"]) == {"ensemble": 1, "naswot": 1, "synflow": 1}
    assert definition_versions(["qnaswot"]) == {"qnaswot": 2}


def test_a_new_version_without_what_changed_is_refused():
    with pytest.raises(ValueError, match="say what changed"):
        register_proxy("versioned-without-reason", input="none", version=2)(lambda probe: 0.0)
    assert "versioned-without-reason" not in PROXIES
