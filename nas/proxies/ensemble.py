"""The ensemble proxy: a z-scored combination of several proxies, usable one architecture at a time."""
from __future__ import annotations

import math

from nas.proxies.registry import get_proxy, register_proxy

# one activation-pattern proxy on real data and one data-free path-magnitude proxy (different failure modes);
# see experiments/proxies/results/proxies_benchmark_fashion-mnist.md: on NAS-Bench-Macro it does NOT beat naswot alone
ENSEMBLE_COMPONENTS = ("naswot", "synflow")


@register_proxy("ensemble", input="batch", batch_size=16, bn="train", components=ENSEMBLE_COMPONENTS)
def ensemble(probe) -> float:
    """Mean z-score of its components (log of params/macs/snip/grad_norm), each standardised with the mean
    and std over a fixed reference sample of the space (32 architectures, ``space.sample_many(32, seed=0)``,
    scored once per Scorer), so one architecture is scored without a population. NaN if any component is.
    A z-score sum is a smooth stand-in for a rank average: over a population it orders candidates almost
    exactly as the mean rank does, but needs no population."""
    total = 0.0
    for name in ENSEMBLE_COMPONENTS:
        proxy = get_proxy(name)
        v = probe.value(name)
        if proxy.log_scale:
            v = math.log(v) if v > 0 else math.nan
        mean, std = probe.reference(name)
        total += (v - mean) / std
    return total / len(ENSEMBLE_COMPONENTS)
