"""Proxy registry and the Probe each proxy receives.

A proxy is a function ``fn(probe) -> float`` (higher = better) registered with ``@register_proxy(name, ...)``
together with what it needs: its input (``none``: the layer plan only; ``noise``: Gaussian images;
``batch``: real images, labels unused; ``batch+labels``), its default batch size and the BatchNorm mode it
runs the network in. The Probe gives it fresh, fake-quantized copies of the network (so a proxy may
mutate weights) and inputs that are identical for every architecture scored under one seed.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

from nas.errors import NasError

INPUTS = ("none", "noise", "batch", "batch+labels")


@dataclass(frozen=True)
class Proxy:
    name: str
    fn: Callable
    input: str  # one of INPUTS
    batch_size: int  # default batch size (0: no input)
    bn: str  # "eval" (running stats), "train" (batch stats) or "-" (no model)
    log_scale: bool  # the ensemble takes log() of it before combining (positive, spans decades)
    summary: str
    components: tuple[str, ...] = field(default=())  # proxies it is computed from (ensemble)


PROXIES: dict[str, Proxy] = {}


def register_proxy(name: str, *, input: str, batch_size: int = 0, bn: str = "-", log_scale: bool = False,
                   components: tuple[str, ...] = ()):
    """Register ``fn(probe) -> float`` under ``name``; its docstring's first line is its summary."""
    if input not in INPUTS:
        raise ValueError(f"input must be one of {INPUTS}")

    def deco(fn: Callable) -> Callable:
        if name in PROXIES:
            raise ValueError(f"proxy {name!r} registered twice")
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        PROXIES[name] = Proxy(name, fn, input, batch_size, bn, log_scale, summary, tuple(components))
        return fn

    return deco


def get_proxy(name: str) -> Proxy:
    if name not in PROXIES:
        raise NasError(f"unknown proxy '{name}'", where="--proxy",
                       fix=f"use one of {', '.join(sorted(PROXIES))} or train:EPOCHS")
    return PROXIES[name]


def finite_or_nan(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


class Inputs:
    """Inputs shared by every architecture under one (data, seed): the same batch for everyone."""

    def __init__(self, space, data: str, seed: int):
        from nas.data import datasets as datamod

        self.space = space
        self.data_name = datamod.check_name(data)
        self.seed = seed
        self._data = None
        self._noise = None
        self._cache: dict = {}

    def _source(self, kind: str):
        from nas.data import datasets as datamod

        if kind == "noise":
            if self._noise is None:
                self._noise = datamod.for_space(self.space, "noise", seed=self.seed)
            return self._noise
        if self._data is None:
            self._data = datamod.for_space(self.space, self.data_name, seed=self.seed)
        return self._data

    def get(self, kind: str, n: int):
        key = (kind, n)
        if key not in self._cache:
            self._cache[key] = self._source(kind).sample(n, seed=self.seed)
        return self._cache[key]


class Probe:
    """What a proxy sees of one architecture: its plan, fresh (fake-quantized) models and the inputs."""

    def __init__(self, arch, space, inputs: Inputs, *, seed: int, batch_size: int | None = None,
                 values: dict | None = None, reference=None):
        from nas.layers import plan

        self.arch = arch
        self.space = space
        self.specs = plan(arch, space)
        self.seed = seed
        self.inputs = inputs
        self.batch_size = batch_size
        self.values = values if values is not None else {}  # proxy name -> value for this arch
        self.reference = reference  # callable(name) -> (mean, std) over a reference sample (ensemble)
        self._base = None
        self._handed_out = False
        self._memo: dict = {}

    # --- models -----------------------------------------------------------------------------------------
    def model(self, *, bn: str = "eval", dtype=None, quantize: bool = True, init: str = "default"):
        """A fresh copy of the network (weights as built under the seed), fake-quantized at its bit-widths.

        ``init="gaussian"`` re-draws every conv/linear weight from N(0, 1) (seeded) before quantization, for
        proxies defined on that initialisation (Zen-NAS). The first call hands out the built network itself
        (no copy: most probes need one model); later calls deep-copy a pristine build.
        """
        import torch

        from nas.nn import fakequant as quant
        from nas.nn.build import build_model

        if self._base is None and not self._handed_out:
            self._handed_out = True
            m = build_model(self.arch, self.space, seed=self.seed)
        else:
            if self._base is None:
                self._base = build_model(self.arch, self.space, seed=self.seed)
            m = copy.deepcopy(self._base)
        if init == "gaussian":
            gaussian_init(m, self.seed)
        elif init != "default":
            raise ValueError(f"unknown init {init!r}")
        if dtype is not None and dtype != torch.float32:
            m = m.to(dtype)
        if quantize:
            quant.apply(m)
        m.train(bn == "train")
        return m

    @property
    def quantized(self) -> bool:
        return any(s.wbits < 32 or s.abits < 32 for s in self.specs)

    # --- inputs -----------------------------------------------------------------------------------------
    def n(self, default: int) -> int:
        return self.batch_size or default

    def batch(self, n: int):
        """(x, y): ``n`` real images of the chosen dataset, the same for every architecture."""
        return self.inputs.get("data", n)

    def noise(self, n: int):
        """(x, y): ``n`` standard-Gaussian images (and random labels), the same for every architecture."""
        return self.inputs.get("noise", n)

    def memo(self, key, fn: Callable):
        """Share an expensive intermediate (e.g. gradients) between proxies of the same architecture."""
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    def value(self, name: str) -> float:
        """Another proxy's value for this architecture (computed once)."""
        if name not in self.values:
            self.values[name] = evaluate(get_proxy(name), self)
        return self.values[name]


def gaussian_init(model, seed: int) -> None:
    """Zen-NAS's initialisation: conv/linear weights N(0, 1), biases 0, BN weight 1 and bias 0 (seeded)."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(1.0)
                m.bias.zero_()


def evaluate(proxy: Proxy, probe: Probe) -> float:
    """Run one proxy; a degenerate network's NaN/inf or numerical failure becomes NaN, never an exception."""
    import torch

    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(probe.seed)
            return finite_or_nan(proxy.fn(probe))
    except (RuntimeError, FloatingPointError, ValueError, ZeroDivisionError, OverflowError):
        # torch.linalg errors are RuntimeErrors; a network that produces NaN ends up here or as NaN
        return math.nan
