"""What a search is asked to do, as plain data: the recipe the CLI builds from its flags, that worker processes
receive, and that :func:`nas.search.run.search_from_config` turns into objects (tables, scorer, sampler,
storage) for :func:`nas.search.run.create_search`."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from nas.deprecation import renamed_arguments
from nas.errors import NasError
from nas.search.objectives import Budgets, check_objectives
from nas.search.sampler_registry import check_sampler
from nas.search.storage import DEFAULT_JOURNAL, DEFAULT_STORAGE, stored_config


def device_names(devices: list[str], dtype: str | None = None) -> list[str]:
    """The device name of each ``devices`` entry: a name as given, a path (a table's or a transferred model's
    file) as its table names itself (what metrics and objectives are keyed by)."""
    from nas.latency.load import load

    return [load(d, dtype=dtype).device if "/" in d or d.endswith((".csv", ".yaml")) else d for d in devices]


@renamed_arguments(latency_dtype="dtype")
@dataclass
class SearchConfig:
    """Left out (None), the options marked "study" are a resumed study's own, else their default. Each field is
    named as the ``nas search`` option that gives it (``dtype``: ``--dtype``; the budgets keep their units)."""

    space: str
    devices: list[str]
    trials: int = 100
    latency_budget_ms: float | None = None  # study; default none
    size_budget_mb: float | None = None  # study; default none
    energy_budget_mj: float | None = None  # study; default none
    objectives: list[str] | None = None  # study; default ["proxy", "latency"]
    sampler: str | None = None  # study; default nas.search.sampler_registry.DEFAULT_SAMPLER
    proxy: str | None = None  # study; default nas.proxies.default_proxy(space)
    data: str | None = None  # study; default "digits"
    seed: int = 0  # the sampler's (each worker adds 1000 x its number): may differ between runs of one study
    proxy_seed: int | None = None  # study; default seed (the proxy's network initialisation and input batch)
    storage: str | None = None
    study: str | None = None
    workers: int = 1
    allow_estimate: bool | None = None  # study; default False
    dtype: str | None = None  # study; default "arch" (each layer at its bits); "fp32" / "int8": all layers
    threads: int = 1  # torch threads per worker: small proxy nets gain nothing from more, and oversubscribe
    _resolved: bool = False  # set by resolved(): the study's options are filled in

    def resolved(self) -> "SearchConfig":
        """Fill what was left out (from a resumed study, else the defaults) and check every option before
        anything is created; errors name the field."""
        from nas.proxies import available, default_proxy
        from nas.space import load_space

        cfg = SearchConfig(**asdict(self))
        if not cfg.devices:
            raise NasError("at least one device is needed", argument="devices", fix="e.g. devices=['raspi4']")
        for name in ("trials", "workers", "threads"):
            if getattr(cfg, name) < 1:
                raise NasError(f"must be >= 1, got {getattr(cfg, name)}", argument=name)
        if cfg.sampler is not None:
            check_sampler(cfg.sampler)
        if cfg.study is None:  # named after the space and tables, however they were given (name or path)
            cfg.study = f"{load_space(cfg.space).name}-{'+'.join(device_names(cfg.devices, cfg.dtype))}"
        cfg.storage = cfg.storage or (DEFAULT_JOURNAL if cfg.workers > 1 else DEFAULT_STORAGE)
        if not cfg._resolved:
            cfg._fill(stored_config(cfg.storage, cfg.study) or {})
            cfg.proxy = cfg.proxy or default_proxy(load_space(cfg.space))
            cfg._resolved = True
        check_objectives(cfg.objectives)
        for name in ("latency_budget_ms", "size_budget_mb", "energy_budget_mj"):
            v = getattr(cfg, name)
            if v is not None and not (v > 0 and math.isfinite(v)):
                raise NasError(f"must be a positive number, got {v}", argument=name)
        if cfg.proxy not in available():
            raise NasError(f"unknown proxy '{cfg.proxy}'", argument="proxy", fix=f"use one of {', '.join(available())}")
        return cfg

    def _fill(self, stored: dict) -> None:
        """Options left out: the resumed study's (``stored``, its config), else the defaults."""
        for name in ("latency_budget_ms", "size_budget_mb", "energy_budget_mj", "objectives", "proxy", "data",
                     "proxy_seed", "allow_estimate", "dtype"):
            key = "latency_dtype" if name == "dtype" else name  # the study records its precision as latency_dtype
            if getattr(self, name) is None and stored.get(key) is not None:
                setattr(self, name, stored[key])
        self.objectives = list(self.objectives or ("proxy", "latency"))
        self.data = self.data or "digits"
        self.proxy_seed = self.seed if self.proxy_seed is None else self.proxy_seed
        self.allow_estimate = bool(self.allow_estimate)

    @property
    def budgets(self) -> Budgets:
        return Budgets(self.latency_budget_ms, self.size_budget_mb, self.energy_budget_mj)
