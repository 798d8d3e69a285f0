"""What the quantization ground truth and its benchmarks share: the truth's settings (space, quantizer version,
development units, simple predictors), the bit assignments a unit is deployed at and where its trained weights
live, the pairs the benchmarks compare (bit twins, activation variants) and the statistics they report."""
from __future__ import annotations

import dataclasses
import itertools
import random
from pathlib import Path

import pandas as pd
from scipy import stats

from experiments.harness import WORK as _WORK

SPACE = "mobilenet-c10"
WORK = _WORK / "quant_truth"  # trained weights of every unit and recipe (git-ignored)
# the deployment the rows were measured with; rows of an older one are re-deployed (the weights are reused).
# 1: onnxruntime chose the int4 scale of w4aX (levels -8..7); 2: our symmetric_weights levels -7..7 everywhere
QUANTIZER = 2
DEV_UNITS = ("arch0", "arch1", "arch2", "arch3", "arch4")  # what qnaswot's choices were made on
BASELINES = ("n_w4_blocks", "w4_param_share", "w4_mac_share")  # the simple predictors of a drop
UNIFORM = {"w8a8": (8, 8), "w4a8": (4, 8), "w8a32": (8, 32), "w4a32": (4, 32), "w32a8": (32, 8)}
PER_ROLE = {"pw4-dw8.a8": ((4, 8), (8, 8)), "pw8-dw4.a8": ((8, 8), (4, 8))}


# --------------------------------------------------------------------------------------------------------
# units and their bit assignments
# --------------------------------------------------------------------------------------------------------
def hash_unit(name: str) -> int:
    """A stable small integer per unit name (Python's hash() is salted per process)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(name)) % 997


def unit_folder(unit: str, epochs: int, n_train: int, seed: int, train_seed: int) -> Path:
    """Where one unit's trained weights (``weights.pt``) and fp32 ONNX file live for one training recipe."""
    retrain = "" if train_seed == seed else f"-t{train_seed}"
    return WORK / f"{unit}-e{epochs}-n{n_train}-s{seed}{retrain}"


def assignments(space, layers, n_mixed: int, seed: int) -> dict[str, list[tuple[int, int, int, int]]]:
    """Name -> per block (wbits, abits, dw_wbits, dw_abits); the float reference is ``fp32``."""
    n = sum(1 for spec in layers if spec.op == "ir")
    out = {"fp32": [(32, 32, 32, 32)] * n}
    out.update({k: [(w, a, w, a)] * n for k, (w, a) in UNIFORM.items()})
    out.update({k: [(*pw, *dw)] * n for k, (pw, dw) in PER_ROLE.items()})
    alt = space.stages[1].block.alternatives[0]
    wchoices, achoices = alt.allowed("wbits"), alt.allowed("abits")
    rng = random.Random(seed)
    for m in range(n_mixed):
        blocks = []
        for _ in range(n):
            w, a = rng.choice(wchoices), rng.choice(achoices)
            blocks.append((w, a, w, a))
        out[f"mixed{m}"] = blocks
    return out


def deployed_layers(layers, bits) -> list:
    """The plan's layers with the blocks at ``bits`` (one tuple per ``ir`` block); stem / head unchanged."""
    it = iter(bits)
    out = []
    for spec in layers:
        if spec.op == "ir":
            w, a, dw, da = next(it)
            spec = dataclasses.replace(spec, wbits=w, abits=a, dw_wbits=dw, dw_abits=da)
        out.append(spec)
    return out


def bits_text(bits) -> str:
    """Per block (wbits, abits, dw_wbits, dw_abits) -> the truth's ``bits`` column ('w4a8 w8a8/dw4a8 ...')."""
    return " ".join(f"w{w}a{a}" if (w, a) == (dw, da) else f"w{w}a{a}/dw{dw}a{da}" for w, a, dw, da in bits)


def parse_bits(text: str) -> list[tuple[int, int, int, int]]:
    """The truth's ``bits`` column -> (wbits, abits, dw_wbits, dw_abits) per block (the inverse of bits_text)."""
    out = []
    for token in text.split():
        pw, _, dw = token.partition("/")
        w, a = (int(v) for v in pw[1:].split("a"))
        dw_w, dw_a = (int(v) for v in dw[2:].split("a")) if dw else (w, a)
        out.append((w, a, dw_w, dw_a))
    return out


# --------------------------------------------------------------------------------------------------------
# pairs
# --------------------------------------------------------------------------------------------------------
def twin_pairs(frame: pd.DataFrame):
    """Every pair of rows of one network: two assignments of the same trained network (bit twins)."""
    for _, g in frame.groupby("unit"):
        for (_, a), (_, b) in itertools.combinations(g.iterrows(), 2):
            yield a, b


def activation_pairs(frame: pd.DataFrame):
    """Every pair of activation variants of one base architecture (each trained) at the same uniform or
    per-role assignment (random mixes differ per network, float twins have no drop)."""
    same = frame[(frame["assignment"] != "fp32") & ~frame["assignment"].str.startswith("mixed")]
    for _, g in same.groupby(["base", "assignment"]):
        for (_, a), (_, b) in itertools.combinations(g.iterrows(), 2):
            yield a, b


def ordered(pairs, predicted: str, margin: float, truth: str = "drop") -> tuple[int, int]:
    """(correctly ordered, counted) among ``pairs`` whose ``truth`` values differ by more than ``margin``."""
    ok = total = 0
    for a, b in pairs:
        if abs(a[truth] - b[truth]) > margin:
            total += 1
            ok += (a[predicted] - b[predicted]) * (a[truth] - b[truth]) > 0
    return ok, total


# --------------------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------------------
def spearman(a, b) -> float:
    return float(stats.spearmanr(a, b).statistic)


def within_network(frame: pd.DataFrame, predicted: str, truth: str = "drop") -> float:
    """Median over networks of the Spearman among one network's own rows: the order of bits within a network,
    apart from how fragile each trained network turned out (``quant_truth_retest``: a second training run of one
    architecture dropped 0.6 points at w4a8 where the first dropped 13.2)."""
    per_unit = [spearman(g[predicted], g[truth]) for _, g in frame.groupby("unit")]
    return float(pd.Series(per_unit).median())


def between_networks(frame: pd.DataFrame, predicted: str, truth: str = "drop") -> float:
    """Spearman over the networks of their mean ``predicted`` and mean ``truth`` (which network is fragile)."""
    means = frame.groupby("unit")[[predicted, truth]].mean()
    return spearman(means[predicted], means[truth])
