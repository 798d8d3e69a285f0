"""Multi-objective architecture search on Optuna: configuration, objectives, the evaluator, the run (object API
``create_search``), crash-safe storage, the Pareto front and reports."""
from nas.search.config import SAMPLERS, SearchConfig
from nas.search.objectives import OBJECTIVES, Budgets, Objectives
from nas.search.run import Search, SearchSummary, create_search, make_sampler, search, search_from_config

__all__ = ["OBJECTIVES", "SAMPLERS", "Budgets", "Objectives", "Search", "SearchConfig", "SearchSummary",
           "create_search", "make_sampler", "search", "search_from_config"]
