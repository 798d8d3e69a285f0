"""Scorer: score architectures with a list of proxies, one at a time or many, cached by canonical text."""
from __future__ import annotations

import math
import re
import time

from nas.data import datasets
from nas.errors import NasError
from nas.lru import LRU
from nas.nn import build
from nas.proxies.registry import Inputs, Probe, evaluate, finite_or_nan, get_proxy
from nas.space import SearchSpace, load_space
from nas.space.arch import Architecture
from nas.train.loop import train

REFERENCE_SIZE = 32  # architectures in the ensemble's reference sample
REFERENCE_SEED = 0  # they are space.sample_many(REFERENCE_SIZE, seed=REFERENCE_SEED), whatever the user seed
TRAIN_RE = re.compile(r"train:(\d+)")
CACHE_SIZE = 4096  # architectures whose scores a Scorer remembers (~1 KB each); the least recently used go first


def parse_proxies(proxies) -> list[str]:
    """'a,b' or ['a', 'b'] -> validated names (``train:E`` allowed)."""
    if isinstance(proxies, str):
        proxies = proxies.split(",")
    names = [str(p).strip() for p in proxies]
    if not names or any(not n for n in names):
        raise NasError("empty proxy name", argument="proxies", fix="e.g. proxies='synflow,naswot'")
    for n in names:
        m = TRAIN_RE.fullmatch(n)
        if n.startswith("train"):
            if not m or int(m.group(1)) < 1:
                raise NasError(f"'{n}' is not train:EPOCHS", argument="proxies", fix="e.g. train:1 or train:3")
        else:
            get_proxy(n)
    if len(set(names)) != len(names):
        raise NasError("a proxy is listed twice", argument="proxies")
    return names


class Scorer:
    """Scores architectures of one space with the given proxies; higher = better, NaN = degenerate.

    ``data`` feeds the proxies that need real images (``fashion-mnist``, ``digits`` or ``noise``); ``seed``
    fixes the network initialisation and the input batches (same seed, same scores); ``batch_size``
    overrides every proxy's default batch size. Results are cached by canonical architecture text for the last
    ``CACHE_SIZE`` (4,096) architectures, so a repeated candidate costs nothing and a long list or search does
    not grow the cache without bound (a search's own cache, one entry per scored network, is what keeps it
    from scoring a network twice: ``nas.search.evaluator.Evaluator``). ``ensemble`` standardises each component with the mean and standard
    deviation over a fixed reference sample of the space (computed once, on first use), so it scores one
    architecture at a time, independently of what else is scored.
    """

    def __init__(self, space, proxies, *, data: str = "fashion-mnist", seed: int = 0, batch_size: int | None = None,
                 train_options: dict | None = None):
        space = space if isinstance(space, SearchSpace) else load_space(space)
        self.space = datasets.space_for_data(space, datasets.check_name(data))  # a user's data: its classes
        self.proxies = parse_proxies(proxies)
        if batch_size is not None and batch_size < 2:
            raise NasError(f"batch size must be at least 2, got {batch_size}", argument="batch_size")
        self.data = data
        self.seed = int(seed)
        self.batch_size = batch_size
        self.train_options = dict(train_options or {})
        self.inputs = Inputs(self.space, data, self.seed)
        self._cache: LRU = LRU(CACHE_SIZE)  # canonical text -> {proxy: value}
        self._reference: dict[str, tuple[float, float]] = {}
        self._ref_values: dict[str, dict[str, float]] = {}
        self.seconds: dict[str, float] = {}  # total time spent per proxy (excluding cache hits)

    # --- one architecture ------------------------------------------------------------------------------
    def _arch(self, arch):
        if isinstance(arch, Architecture):
            self.space.validate(arch)
            return arch
        return self.space.parse(str(arch))

    def score(self, arch) -> dict[str, float]:
        """{proxy: value} for one architecture (an Architecture, canonical text, JSON or native encoding)."""
        arch = self._arch(arch)
        key = self.space.format(arch)
        values = self._cache.setdefault(key, {})
        missing = [p for p in self.proxies if p not in values]
        if missing:
            probe = self._probe(arch, values)
            for name in missing:
                t0 = time.perf_counter()
                if TRAIN_RE.fullmatch(name):
                    values[name] = self._train(arch, int(name.split(":")[1]))
                else:
                    values[name] = probe.value(name)
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
        return {p: values[p] for p in self.proxies}

    def _probe(self, arch, values: dict) -> Probe:
        return Probe(arch, self.space, self.inputs, seed=self.seed, batch_size=self.batch_size, values=values,
                     reference=self.reference)

    def _train(self, arch, epochs: int) -> float:
        model = build.build_model(arch, self.space, seed=self.seed)
        opts = {"data": self.data, "seed": self.seed, **self.train_options}
        return finite_or_nan(train(model, epochs=epochs, **opts)["accuracy"])

    # --- many ---------------------------------------------------------------------------------------------
    def score_many(self, archs, progress: bool = True):
        """A DataFrame with ``arch`` (canonical text) and one column per proxy, one row per input, in order."""
        import pandas as pd
        from tqdm import tqdm

        rows = []
        for a in tqdm(list(archs), desc="scoring", unit="arch", disable=not progress, leave=False):
            arch = self._arch(a)
            rows.append({"arch": self.space.format(arch), **self.score(arch)})
        return pd.DataFrame(rows, columns=["arch", *self.proxies])

    # --- ensemble support -------------------------------------------------------------------------------
    def reference(self, name: str) -> tuple[float, float]:
        """(mean, std) of a (log-transformed where the proxy says so) proxy over the reference sample."""
        if name not in self._reference:
            proxy = get_proxy(name)
            vals = []
            for arch in self.space.sample_many(REFERENCE_SIZE, seed=REFERENCE_SEED):
                key = self.space.format(arch)
                store = self._ref_values.setdefault(key, dict(self._cache.get(key, {})))
                if name not in store:
                    probe = Probe(arch, self.space, self.inputs, seed=self.seed, batch_size=self.batch_size,
                                  values=store, reference=self.reference)
                    store[name] = evaluate(proxy, probe)
                vals.append(transform(proxy, store[name]))
            finite = [v for v in vals if math.isfinite(v)]
            if len(finite) < 2:  # no mean and spread to standardise with: never a made-up (0, 1)
                raise NasError(f"ensemble: '{name}' is finite on {len(finite)} of the {len(vals)} reference "
                               f"architectures (space {self.space.name}, data '{self.data}', seed {self.seed}); "
                               "standardising needs 2", argument="proxies",
                               fix=f"score with other data or seed, or with the components themselves "
                                   f"(proxies='{','.join(get_proxy('ensemble').components)}')")
            mean = sum(finite) / len(finite)
            std = math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1))
            self._reference[name] = (mean, std if std > 0 else 1.0)  # constant (a one-architecture space): z = 0
        return self._reference[name]


def transform(proxy, value: float) -> float:
    if proxy.log_scale:
        return math.log(value) if value > 0 else math.nan
    return value


def rank(values, *, ascending: bool = False):
    """Ranks (1 = best) of a pandas Series of scores; NaN/inf are ranked last, never first."""
    import numpy as np

    s = values.astype(float).replace([np.inf, -np.inf], np.nan)
    return s.rank(ascending=ascending, method="min", na_option="bottom")
