"""What the tests/test_latency_* files share (no tests of its own): copies of a shipped table to break, the first
measured FBNet architecture, one profiling run per test session (the profile and validate tests both read it),
and a synthetic device built from the shipped FBNet tables for the transfer tests."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from nas.latency.load import load as load_latency
from nas.latency.measure.profile import ProfileConfig, profile_space
from nas.latency.table import SHIPPED_DIR
from nas.latency.transfer.model import layer_features
from nas.layers import plan
from nas.space import load_space


# --------------------------------------------------------------------------------------------------------
# shipped tables
# --------------------------------------------------------------------------------------------------------
# the published tables and the spaces they cover
EXPECTED = {"edgegpu": ["fbnet-c100", "fbnet-in1k"], "raspi4": ["fbnet-c100", "fbnet-in1k"],
            "pixel3": ["fbnet-c100", "fbnet-in1k"], "eyeriss": ["fbnet-c100", "fbnet-in1k"],
            "fpga": ["fbnet-c100", "fbnet-in1k"], "note10": ["ofa-mbv3"], "proxyless-mobile": ["proxylessnas-mobile"],
            "bitfusion": ["apq"], "titanx": ["fbnet-c100"], "gold6226": ["fbnet-c100"], "samsung-s7": ["fbnet-c100"]}

# first row of ../shared/data/dev/fbnet_measured_latency_dev.csv (raspi4_ms), so this runs without shared data
ROW0 = ("k5_e6|skip|k3_e1_g2|skip|k5_e1|skip|skip|skip|k5_e6|k5_e1|k3_e1_g2|k5_e1|k5_e6|k3_e6|k3_e3|k5_e6|k3_e6|"
        "k3_e3|k5_e1|k3_e3|k5_e1|k5_e1_g2", 30.252860404143576)


def copy_table(tmp_path, device="raspi4"):
    """A shipped table copied to ``tmp_path/t.csv`` (+ ``t.meta.yaml``) to edit."""
    shutil.copy(SHIPPED_DIR / f"{device}.csv", tmp_path / "t.csv")
    shutil.copy(SHIPPED_DIR / f"{device}.meta.yaml", tmp_path / "t.meta.yaml")
    return tmp_path / "t.csv"


def edit_csv(path, fn):
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    fn(df).to_csv(path, index=False)


# --------------------------------------------------------------------------------------------------------
# one profiling run per session
# --------------------------------------------------------------------------------------------------------
PROFILE_SPACE = "mobilenet-c10"
FAST = ProfileConfig(threads=1, warmup=1, repeats=3, rounds=1, batch=64)
_PROFILED: dict[int, tuple] = {}


def profiled_once(tmp_path_factory):
    """(ProfileResult, archs CSV, archs): two mobilenet-c10 architectures profiled at fp32 and int8 into
    'unit-cpu', once per test session (keyed by the session's tmp_path_factory). Read it, never change it."""
    key = id(tmp_path_factory)
    if key not in _PROFILED:
        d = tmp_path_factory.mktemp("lut")
        s = load_space(PROFILE_SPACE)
        archs = s.sample_many(2, seed=4)
        csv = d / "archs.csv"
        pd.DataFrame({"arch": [s.format(a) for a in archs]}).to_csv(csv, index=False)
        result = profile_space(PROFILE_SPACE, "unit-cpu", dtypes=["fp32", "int8"], archs=str(csv), config=FAST,
                               out_dir=d, progress=False)
        _PROFILED[key] = (result, csv, archs)
    return _PROFILED[key]


# --------------------------------------------------------------------------------------------------------
# a synthetic new device for transfer
# --------------------------------------------------------------------------------------------------------
TRANSFER_SPACE = "fbnet-c100"
FBNET = ["edgegpu", "raspi4", "pixel3", "eyeriss", "fpga"]
FROM = [a for d in FBNET for a in ("--from", d)]


def true_latency(arch, space) -> float:
    """A synthetic 'new device': 1.5 x edgegpu + 0.4 x pixel3 + 0.02 ms per kernel + 0.3 ms per network."""
    e = load_latency("edgegpu").predict(arch, space).latency_ms
    p = load_latency("pixel3").predict(arch, space).latency_ms
    kernels = sum(layer_features(s)[2] for s in plan(arch, space))
    return 1.5 * e + 0.4 * p + 0.02 * kernels + 0.3


def write_measured(path, space, archs, values=None):
    values = [true_latency(a, space) for a in archs] if values is None else values
    pd.DataFrame({"arch": [space.to_native(a) for a in archs], "latency_ms": values}).to_csv(path, index=False)
    return path


def adapt_synthetic(d, space):
    """The synthetic device adapted from 15 measurements and written to ``d/synthetic.transfer.yaml``."""
    from nas.latency.transfer.adapt import adapt

    csv = write_measured(d / "m.csv", space, space.sample_many(15, seed=1))
    model = adapt(TRANSFER_SPACE, str(csv), "synthetic", sources=FBNET)
    model.write(d / "synthetic.transfer.yaml")
    return model


@pytest.fixture(scope="module")
def space():
    """The space the transfer tests fit in (fbnet-c100: five shipped source tables cover it)."""
    return load_space(TRANSFER_SPACE)


@pytest.fixture(scope="module")
def adapted(tmp_path_factory, space):
    """(folder, model): a transferred model fitted on synthetic measurements (see adapt_synthetic)."""
    d = tmp_path_factory.mktemp("adapt")
    return d, adapt_synthetic(d, space)
