"""Multi-objective architecture search on Optuna: configuration, objectives, the evaluator, the run (object API
``create_search``), crash-safe storage, the Pareto front and reports."""
from nas.search.config import OBJECTIVES, SAMPLERS, SearchConfig
from nas.search.run import SearchSummary, search

__all__ = ["OBJECTIVES", "SAMPLERS", "SearchConfig", "SearchSummary", "search"]
