"""Proxy registry and the Probe each proxy receives.

A proxy is a function ``fn(probe) -> float`` (higher = better) registered with ``@register_proxy(name, ...)``
together with what it needs: its input (``none``: the layer plan only; ``noise``: Gaussian images;
``batch``: real images, labels unused; ``batch+labels``), its default batch size and the BatchNorm mode it
runs the network in. The Probe gives it fresh, fake-quantized copies of the network (so a proxy may
mutate weights) and inputs at the architecture's resolution, identical for every architecture of that
resolution scored under one seed. A proxy that raises is an error, unless the network itself computes NaN/inf
(a degenerate architecture scores NaN; see :func:`evaluate`).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from nas.data import datasets
from nas.errors import NasError, first_line
from nas.layers import plan
from nas.nn import build, fakequant

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
    # bumped whenever a change alters the scores it gives, so a resumed study never mixes two definitions;
    # ``changed`` says what the current version changed (shown when an older study is refused)
    version: int = 1
    changed: str = ""


PROXIES: dict[str, Proxy] = {}


def register_proxy(name: str, *, input: str, batch_size: int = 0, bn: str = "-", log_scale: bool = False,
                   components: tuple[str, ...] = (), version: int = 1, changed: str = ""):
    """Register ``fn(probe) -> float`` under ``name``; its docstring's first line is its summary. ``version``:
    its definition's number (raise it, saying what ``changed``, when an edit changes the scores it gives)."""
    if input not in INPUTS:
        raise ValueError(f"input must be one of {INPUTS}")

    def deco(fn: Callable) -> Callable:
        if name in PROXIES:
            raise ValueError(f"proxy {name!r} registered twice")
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        if version > 1 and not changed:
            raise ValueError(f"proxy {name!r} version {version}: say what changed")
        PROXIES[name] = Proxy(name, fn, input, batch_size, bn, log_scale, summary, tuple(components), version, changed)
        return fn

    return deco


def get_proxy(name: str) -> Proxy:
    if name not in PROXIES:
        raise NasError(f"unknown proxy '{name}'", argument="proxies",
                       fix=f"use one of {', '.join(sorted(PROXIES))} or train:EPOCHS")
    return PROXIES[name]


def definition_versions(names) -> dict[str, int]:
    """``{proxy: version}`` of the named proxies and of the components they are computed from (``train:E`` has
    no definition to version): what a study's scores depend on beyond the proxies' names."""
    out: dict[str, int] = {}
    todo = [n for n in names if n in PROXIES]
    while todo:
        proxy = PROXIES[todo.pop()]
        out[proxy.name] = proxy.version
        todo += [c for c in proxy.components if c not in out]
    return dict(sorted(out.items()))


def finite_or_nan(value: float) -> float:
    v = float(value)
    return v if math.isfinite(v) else math.nan


class Inputs:
    """Input batches shared by every architecture under one (data, seed): each architecture gets them at its
    own resolution, and every architecture of one resolution gets the same images (the same draw, resized
    per resolution). Cached per (kind, batch size, resolution). A dataset with fewer images than a batch is an
    error naming the data and the batch size: drawn with repeats, the batch would hold duplicate images."""

    def __init__(self, space, data: str, seed: int):
        self.space = space
        self.data_name = datasets.check_name(data)
        self.seed = seed
        self._sources: dict = {}  # (dataset, resolution) -> ImageData
        self._cache: dict = {}  # (kind, n, resolution) -> (x, y)

    def get(self, kind: str, n: int, resolution: int):
        """(x, y): ``n`` images of ``kind`` ("data": the chosen dataset, or "noise") at ``resolution``."""
        key = (kind, n, resolution)
        if key not in self._cache:
            name = "noise" if kind == "noise" else self.data_name
            if (name, resolution) not in self._sources:
                self._sources[name, resolution] = datasets.for_space(self.space, name, resolution=resolution,
                                                                     seed=self.seed)
            source = self._sources[name, resolution]
            if source.x is not None and n > len(source):  # drawn with repeats, a batch holds duplicate images
                raise NasError(f"has {len(source)} training images, fewer than the proxy batch of {n}",
                               where=f"data '{name}'", argument="batch_size",
                               fix=f"add images, or score every proxy on a smaller batch: batch_size={len(source)} "
                                   "(a batch drawn with repeats holds duplicate images, which make naswot NaN)")
            self._cache[key] = source.sample(n, seed=self.seed)
        return self._cache[key]


class Probe:
    """What a proxy sees of one architecture: its plan, fresh (fake-quantized) models and the inputs."""

    def __init__(self, arch, space, inputs: Inputs, *, seed: int, batch_size: int | None = None,
                 values: dict | None = None, reference=None):
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
        proxies defined on that initialisation (Zen-NAS); ``init="laplace"`` re-draws them heavy-tailed, as
        trained weights are, at each layer's initial spread (``laplace_init``: what rounding to few bits costs).
        The first call hands out the built network itself (no copy: most probes need one model); later calls
        deep-copy a pristine build.
        """
        if self._base is None and not self._handed_out:
            self._handed_out = True
            m = build.build_model(self.arch, self.space, seed=self.seed)
        else:
            if self._base is None:
                self._base = build.build_model(self.arch, self.space, seed=self.seed)
            m = copy.deepcopy(self._base)
        if init == "gaussian":
            gaussian_init(m, self.seed)
        elif init == "laplace":
            laplace_init(m, self.seed)
        elif init != "default":
            raise ValueError(f"unknown init {init!r}")
        if dtype is not None and dtype != torch.float32:
            m = m.to(dtype)
        if quantize:
            fakequant.apply(m)
        m.train(bn == "train")
        return m

    def computes_nonfinite(self, proxy: Proxy) -> bool:
        """Whether the network itself is degenerate: a fresh model (in ``proxy``'s BN mode) run on ``proxy``'s
        kind of input produces NaN/inf in any layer's output. A forward pass that fails is not degeneracy."""
        model = self.model(bn="train" if proxy.bn == "train" else "eval")
        x, _ = (self.batch if proxy.input.startswith("batch") else self.noise)(max(2, self.n(proxy.batch_size)))
        finite = []

        def check(_module, _inputs, out):
            if isinstance(out, torch.Tensor):
                finite.append(bool(torch.isfinite(out).all()))

        hooks = [m.register_forward_hook(check) for m in model.modules() if next(m.children(), None) is None]
        try:
            with torch.no_grad():
                model(x)
        except Exception:  # the network cannot run at all: an error for the caller, not a NaN score
            return False
        finally:
            for h in hooks:
                h.remove()
        return not all(finite)

    # --- inputs -----------------------------------------------------------------------------------------
    def n(self, default: int) -> int:
        return self.batch_size or default

    def batch(self, n: int):
        """(x, y): ``n`` real images of the chosen dataset at the architecture's resolution, the same for
        every architecture of that resolution."""
        return self.inputs.get("data", n, self.arch.resolution)

    def noise(self, n: int):
        """(x, y): ``n`` standard-Gaussian images (and random labels) at the architecture's resolution, the
        same for every architecture of that resolution."""
        return self.inputs.get("noise", n, self.arch.resolution)

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


def laplace_init(model, seed: int) -> None:
    """Trained-like weights: every conv/linear weight re-drawn from a Laplace distribution with the layer's own
    standard deviation (seeded), biases and BN kept.

    Trained conv weights are bell-shaped with heavy tails (Banner et al., ACIQ, 2019): a channel's largest weight,
    which sets its quantization step, grows with its fan-in n like log n, against sqrt(2 log n) for the
    build's Gaussian (kaiming) weights, so wide layers lose more to rounding than narrow and depth-wise ones.
    The difference of two unit exponentials is Laplace(0, 1), variance 2."""
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.numel() > 1:
                w = m.weight
                std = float(w.std())
                e1 = torch.empty(w.shape).exponential_(generator=g)
                e2 = torch.empty(w.shape).exponential_(generator=g)
                w.copy_((e1 - e2) * (std / math.sqrt(2.0)))


def evaluate(proxy: Proxy, probe: Probe) -> float:
    """Run one proxy on one architecture. NaN only for a degenerate network: the proxy's value is NaN/inf, or
    it raised and the network itself computes NaN/inf (a torch.linalg error on a NaN matrix, say). Any other
    exception is the proxy's fault: a NasError naming the proxy and the architecture (the exception chained).
    The network is checked only after an exception, so scoring costs nothing extra."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(probe.seed)
        try:
            return finite_or_nan(proxy.fn(probe))
        except NasError:
            raise
        except Exception as exc:  # which exceptions a proxy may raise is open; the network tells whose fault
            if probe.computes_nonfinite(proxy):
                return math.nan
            raise NasError(f"proxy '{proxy.name}' failed on architecture {probe.space.format(probe.arch)} "
                           f"({type(exc).__name__}: {first_line(exc)})", argument="proxies",
                           fix="only a degenerate network (NaN/inf activations) scores NaN and this one is not: "
                               "fix the proxy, or score with another one") from exc
