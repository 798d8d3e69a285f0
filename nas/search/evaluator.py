"""Scores architectures for a search: proxy, latency per device (with energy where known), size, MACs, params;
cached by canonical architecture."""
from __future__ import annotations

from typing import Any

from nas.errors import NasError
from nas.layers import count, network_key, plan
from nas.lru import LRU

# bounded caches of what a sampler screens (tens of candidates a trial, ~5 KB of metrics and ~7 KB of plan each:
# unbounded they grew ~0.3 GB over 1,500 trials); the scored networks' cache (one entry a trial) is not bounded
CHEAP_CACHE_SIZE = 4096  # networks whose cheap metrics are kept (the sampler's pool is at most 1,024)
PLAN_CACHE_SIZE = 1024  # architectures whose plan is kept (asked for a few times in a row)


def by_device(models, sources=None, *, argument: str = "latency") -> dict:
    """``models`` (LatencyModels) keyed by their device name: the one identity of a table in metrics
    (``latency_ms.<device>``), objectives, budgets and the study, whether it was given by name or by path. Two
    models of one device name would collapse into one objective: refused, naming both (``sources``: what each
    was given as, e.g. a name and a path; default: their files)."""
    models = list(models)
    sources = list(sources) if sources is not None else [_source(m) for m in models]
    out, given = {}, {}
    for model, source in zip(models, sources):
        if model.device in out:
            raise NasError(f"{given[model.device]!r} and {source!r} are both tables of device '{model.device}'",
                           argument=argument,
                           fix="give each table its own device name (`device:` in its .meta.yaml), or search "
                               "with one of them")
        out[model.device], given[model.device] = model, source
    return out


def _source(model) -> str:
    ident = model.identity
    return str(ident.get("table") or ident.get("path") or model.device)


class Evaluator:
    """Scores architectures of ``space`` with ``scorer`` (its first proxy) and every latency model in
    ``latency`` (LatencyModels, or a dict of them keyed by their own device names). Cached by the network an architecture builds
    (``nas.layers.network_key``), so identical networks are scored once per process (and once per study: the
    cache is seeded from the study's finished trials).

    :meth:`cheap` is everything but the proxy (table lookups and sums, ~1 ms): what a sampler may screen many
    candidates with before spending a proxy evaluation on one.

    Unless ``allow_estimate``, a table that does not cover the whole space is refused here, up front: any
    signature of the space may come up during a search."""

    def __init__(self, space, latency: dict, scorer, *, allow_estimate: bool = False):
        if isinstance(latency, dict):
            wrong = [f"{k!r} -> '{m.device}'" for k, m in latency.items() if k != m.device]
            if wrong:
                raise NasError(f"latency models keyed by another name than their device: {', '.join(wrong)}",
                               argument="latency", fix="key each model by its device (model.device), or pass a list")
            latency = latency.values()
        self.space, self.latency, self.scorer = space, by_device(latency), scorer
        self.allow_estimate = allow_estimate
        if not allow_estimate:
            for device, model in self.latency.items():
                _check_covers(device, model, space)
        self.cache: dict[bytes, dict[str, Any]] = {}  # network key -> every metric (the scored networks)
        self._cheap = LRU(CHEAP_CACHE_SIZE)  # network key -> the metrics without the proxy (screened candidates)
        self._layers = LRU(PLAN_CACHE_SIZE)  # architecture -> its plan (a sampler asks for the same one repeatedly)

    def lut_identities(self) -> dict[str, Any]:
        return {d: m.identity for d, m in self.latency.items()}

    def layers(self, arch) -> list:
        """``nas.layers.plan(arch, space)``, remembered for the last ``PLAN_CACHE_SIZE`` architectures."""
        layers = self._layers.get(arch)
        if layers is None:
            layers = self._layers[arch] = plan(arch, self.space)
        return layers

    def network(self, arch) -> bytes:
        """The key of the network ``arch`` builds (what the caches and duplicate checks use)."""
        return network_key(self.layers(arch))

    def cheap(self, arch) -> dict[str, Any]:
        """params, macs, size_mb and latency (energy where known) per device: everything but the proxy."""
        layers = self.layers(arch)
        key = network_key(layers)
        known = self._cheap.get(key)
        if known is not None:
            return known
        cost = count(layers)
        metrics: dict[str, Any] = {"params": cost.params, "macs": cost.macs, "size_mb": cost.size_bytes / 1e6}
        for d, model in self.latency.items():
            if hasattr(model, "predict_layers"):
                pred = model.predict_layers(layers, self.space, arch, allow_estimate=self.allow_estimate)
            else:
                pred = model.predict(arch, self.space, allow_estimate=self.allow_estimate)
            metrics[f"latency_ms.{d}"] = float(pred.latency_ms)
            if pred.energy_mJ is not None:
                metrics[f"energy_mJ.{d}"] = float(pred.energy_mJ)
            if pred.estimated:
                metrics[f"latency_estimated.{d}"] = True
            if pred.notes:  # priced by a rule, e.g. a classifier resized to a user's classes
                metrics[f"latency_notes.{d}"] = "; ".join(pred.notes)
        self._cheap[key] = metrics
        return metrics

    def evaluate(self, arch) -> dict[str, Any]:
        key = self.network(arch)
        if key in self.cache:
            return self.cache[key]
        metrics = dict(self.cheap(arch))
        try:
            scores = self.scorer.score(arch)
        except NasError as exc:  # a search scores with one proxy, its option `proxy` (SearchConfig, `nas search`)
            if exc.argument != "proxies":
                raise
            raise NasError(exc.problem, where=exc.where, fix=exc.fix, argument="proxy") from exc
        for name, value in scores.items():
            metrics[f"proxy.{name}"] = float(value)
        self.cache[key] = metrics
        return metrics

    def seed_cache(self, study) -> set[bytes]:
        """Cache the scores of the study's finished trials; returns the networks they built."""
        from optuna.trial import TrialState

        networks = set()
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if "arch" in t.user_attrs and "metrics" in t.user_attrs:
                metrics = {k: v for k, v in t.user_attrs["metrics"].items() if k not in ("feasible", "duplicate")}
                try:
                    key = self.network(self.space.parse(t.user_attrs["arch"]))
                except NasError:  # an architecture this space no longer parses: score it afresh if it comes up
                    continue
                self.cache.setdefault(key, metrics)
                networks.add(key)
        return networks


def _check_covers(device: str, model, space) -> None:
    """``model.check_covers(space)``, with a hint when the table was measured at one precision only."""
    try:
        model.check_covers(space)
    except NasError as exc:
        measured = str(getattr(getattr(model, "table", None), "meta", {}).get("dtype", ""))
        if getattr(model, "dtype", "arch") == "arch" and measured in ("fp32", "int8"):
            exc.fix = (f"{exc.fix}; or price every layer at dtype='{measured}' "
                       f"(table '{device}' was measured with every layer at {measured})")
        raise NasError(exc.problem, where=exc.where, fix=exc.fix, argument=exc.argument) from None
