"""What a search optimises and under which budgets: objective columns, their directions and values, and the
constraint values of a scored architecture. One definition shared by the run, the Pareto front and reports,
rebuilt from a study's stored configuration alone."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nas.errors import NasError

OBJECTIVES = ("proxy", "latency", "energy", "size", "macs")
PER_DEVICE = ("latency", "energy")  # one objective per device


def check_objectives(kinds) -> tuple[str, ...]:
    """``kinds`` as a tuple when it is a non-empty subset of :data:`OBJECTIVES` without repeats."""
    kinds = tuple(kinds)
    if not kinds or any(k not in OBJECTIVES for k in kinds) or len(set(kinds)) != len(kinds):
        raise NasError(f"bad objectives {','.join(map(str, kinds))}", argument="objectives",
                       fix=f"a subset of {', '.join(OBJECTIVES)} without repeats")
    return kinds


@dataclass(frozen=True)
class Objectives:
    """``kinds`` (a subset of :data:`OBJECTIVES`, in order); latency and energy are one objective per device."""

    kinds: tuple[str, ...]
    devices: tuple[str, ...]
    proxy: str

    @classmethod
    def from_config(cls, cfg: dict) -> "Objectives":
        """From a study's stored configuration (``study.user_attrs['config']``)."""
        return cls(tuple(cfg["objectives"]), tuple(cfg["devices"]), str(cfg["proxy"]))

    @property
    def directions(self) -> list[str]:
        out = []
        for o in self.kinds:
            if o in PER_DEVICE:
                out += ["minimize"] * len(self.devices)
            else:
                out.append("maximize" if o == "proxy" else "minimize")
        return out

    @property
    def columns(self) -> list[str]:
        """Metric names of the objective values, in Optuna's order."""
        out = []
        for o in self.kinds:
            if o == "latency":
                out += [f"latency_ms.{d}" for d in self.devices]
            elif o == "energy":
                out += [f"energy_mJ.{d}" for d in self.devices]
            else:
                out.append({"proxy": f"proxy.{self.proxy}", "size": "size_mb", "macs": "macs"}[o])
        return out

    def values(self, metrics: dict[str, Any]) -> list[float]:
        """Objective values of a scored architecture; a degenerate network (NaN) is ranked last."""
        values = []
        for name, direction in zip(self.columns, self.directions):
            if name not in metrics:
                raise NasError(f"the scored architecture has no '{name}'", argument="objectives",
                               fix="price energy with a table that has it (e.g. bitfusion, edgegpu), or drop energy")
            v = float(metrics[name])
            if math.isnan(v) or math.isinf(v):
                v = -1e300 if direction == "maximize" else 1e300
            values.append(v)
        return values


@dataclass(frozen=True)
class Budgets:
    """Upper bounds: latency (ms) and energy (mJ), on every device, and size (MB at the architecture's bits)."""

    latency_ms: float | None = None
    size_mb: float | None = None
    energy_mj: float | None = None

    def constraints(self, metrics: dict[str, Any], devices) -> dict[str, float]:
        """Optuna constraint values: <= 0 means satisfied; a non-finite metric breaks its budget (+inf), never
        passes it (NaN - budget is NaN, which Optuna's penalty sum counts as satisfied)."""
        out = self._constraints(metrics, devices)
        return {k: v if math.isfinite(v) else math.inf for k, v in out.items()}

    def _constraints(self, metrics: dict[str, Any], devices) -> dict[str, float]:
        out = {}
        if self.latency_ms is not None:
            for d in devices:
                out[f"latency.{d}"] = metrics[f"latency_ms.{d}"] - self.latency_ms
        if self.energy_mj is not None:
            for d in devices:
                if f"energy_mJ.{d}" not in metrics:
                    raise NasError(f"table '{d}' gives no energy for the energy budget", argument="constraints",
                                   fix="use a table with energy (e.g. bitfusion, edgegpu) or drop the energy budget")
                out[f"energy.{d}"] = metrics[f"energy_mJ.{d}"] - self.energy_mj
        if self.size_mb is not None:
            out["size"] = metrics["size_mb"] - self.size_mb
        return out
