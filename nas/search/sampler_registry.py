"""The samplers a search can be asked for by name: one registry (name -> factory) that the configuration
(``SearchConfig.sampler``), the API (``create_search(sampler="front")``, :func:`make_sampler`) and the CLI
(``nas search --sampler``, its choices and help) all read. A study records its sampler under the name here
(:func:`sampler_name`), so a resumed study asks for the same kind."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from nas.errors import NasError, did_you_mean


@dataclass(frozen=True)
class SamplerKind:
    name: str
    summary: str  # what it does, in a few words (the CLI's help)
    class_name: str  # the class of what ``make`` returns: how a sampler object is named back in a study
    make: Callable[[int, int], Any]  # (seed, trials) -> an Optuna sampler set up for ``trials`` trials


def _front(seed: int, trials: int):
    from nas.search.sampler import FrontSampler

    return FrontSampler(seed=seed, trials=trials)


def _nsga2(seed: int, trials: int):
    import optuna

    # Optuna's default population (50) leaves a 100-trial study two generations; aim for >= 10
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=min(50, max(10, trials // 10)))


def _tpe(seed: int, trials: int):
    import optuna

    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)


def _random(seed: int, trials: int):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


SAMPLERS: dict[str, SamplerKind] = {kind.name: kind for kind in (
    SamplerKind("front", "screens candidates on the tables and a surrogate of the proxy, scores those that extend "
                         "the Pareto front", "FrontSampler", _front),
    SamplerKind("nsga2", "Optuna's NSGA-II, a population of trials / 10 (10 to 50)", "NSGAIISampler", _nsga2),
    SamplerKind("tpe", "Optuna's multivariate TPE", "TPESampler", _tpe),
    SamplerKind("random", "Optuna's random sampler", "RandomSampler", _random),
)}
DEFAULT_SAMPLER = "front"
LEGACY_SAMPLER = "nsga2"  # what a study made before studies recorded their sampler was made with (the default then)


def check_sampler(name: str) -> str:
    """``name`` if a sampler is registered under it, else a NasError listing the names."""
    if name not in SAMPLERS:
        raise NasError(f"unknown sampler '{name}'{did_you_mean(name, list(SAMPLERS))}", argument="sampler",
                       fix=f"use one of {', '.join(SAMPLERS)}")
    return name


def make_sampler(name: str, *, seed: int = 0, trials: int = 100):
    """An Optuna sampler by its registered name, with the settings chosen for ``trials`` trials."""
    return SAMPLERS[check_sampler(name)].make(seed, trials)


def sampler_name(sampler) -> str:
    """The name a study records for ``sampler``: its registered name, else its class name."""
    names = {kind.class_name: kind.name for kind in SAMPLERS.values()}
    return names.get(type(sampler).__name__, type(sampler).__name__)
