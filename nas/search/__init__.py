"""Multi-objective architecture search on Optuna: configuration, objectives, the evaluator, the run (object API
``create_search``), crash-safe storage, the Pareto front and reports. Names are imported on first use (the CLI
reads ``nas.search.storage`` at start-up without loading the rest)."""
from nas.lazy import lazy_attributes

_NAMES = {
    "SAMPLERS": "nas.search.sampler_registry:SAMPLERS", "SearchConfig": "nas.search.config:SearchConfig",
    "OBJECTIVES": "nas.search.objectives:OBJECTIVES", "Budgets": "nas.search.objectives:Budgets",
    "Objectives": "nas.search.objectives:Objectives", "Search": "nas.search.run:Search",
    "SearchSummary": "nas.search.run:SearchSummary", "create_search": "nas.search.run:create_search",
    "make_sampler": "nas.search.sampler_registry:make_sampler", "search": "nas.search.run:search",
    "search_from_config": "nas.search.run:search_from_config",
}
__getattr__, __dir__ = lazy_attributes(__name__, _NAMES)
__all__ = sorted(_NAMES)
