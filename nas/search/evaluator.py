"""Scores architectures for a search: proxy, latency per device (with energy where known), size, MACs, params;
cached by canonical architecture."""
from __future__ import annotations

from typing import Any

from nas.errors import NasError
from nas.layers import count, plan


class Evaluator:
    """Scores architectures of ``space`` with ``scorer`` (its first proxy) and every latency model in
    ``latency`` (device name -> LatencyModel). Cached by canonical architecture, so identical candidates are
    scored once per process (and once per study: the cache is seeded from the study's finished trials).

    Unless ``allow_estimate``, a table that does not cover the whole space is refused here, up front: any
    signature of the space may come up during a search."""

    def __init__(self, space, latency: dict, scorer, *, allow_estimate: bool = False):
        self.space, self.latency, self.scorer = space, dict(latency), scorer
        self.allow_estimate = allow_estimate
        if not allow_estimate:
            for device, model in self.latency.items():
                _check_covers(device, model, space)
        self.cache: dict[str, dict[str, Any]] = {}

    def lut_identities(self) -> dict[str, Any]:
        return {d: m.identity for d, m in self.latency.items()}

    def evaluate(self, arch) -> dict[str, Any]:
        key = self.space.format(arch)
        if key in self.cache:
            return self.cache[key]
        cost = count(plan(arch, self.space))
        metrics: dict[str, Any] = {"params": cost.params, "macs": cost.macs, "size_mb": cost.size_bytes / 1e6}
        for d, model in self.latency.items():
            pred = model.predict(arch, self.space, allow_estimate=self.allow_estimate)
            metrics[f"latency_ms.{d}"] = float(pred.latency_ms)
            if pred.energy_mJ is not None:
                metrics[f"energy_mJ.{d}"] = float(pred.energy_mJ)
            if pred.estimated:
                metrics[f"latency_estimated.{d}"] = True
        for name, value in self.scorer.score(arch).items():
            metrics[f"proxy.{name}"] = float(value)
        self.cache[key] = metrics
        return metrics

    def seed_cache(self, study) -> None:
        from optuna.trial import TrialState

        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if "arch" in t.user_attrs and "metrics" in t.user_attrs:
                metrics = {k: v for k, v in t.user_attrs["metrics"].items() if k not in ("feasible", "duplicate")}
                self.cache.setdefault(t.user_attrs["arch"], metrics)


def _check_covers(device: str, model, space) -> None:
    """``model.check_covers(space)``, with a hint when the table was measured at one precision only."""
    try:
        model.check_covers(space)
    except NasError as exc:
        measured = str(getattr(getattr(model, "table", None), "meta", {}).get("dtype", ""))
        if getattr(model, "dtype", "arch") == "arch" and measured in ("fp32", "int8"):
            exc.fix = (f"{exc.fix}; or price every layer at latency_dtype='{measured}' "
                       f"(table '{device}' was measured with every layer at {measured})")
        raise NasError(exc.problem, where=exc.where, fix=exc.fix, argument=exc.argument) from None
