"""Hardware-aware neural architecture search for MobileNet-style spaces.

Data flow: search_spaces/*.yaml -> SearchSpace -> Architecture -> layer plan (LayerSpec) -> torch model /
params+MACs / latency-table signatures -> Optuna study -> Pareto front -> exported ONNX.

A lazy facade: ``import nas`` loads nothing heavy; each name below is imported on first use, so
``nas --help`` stays fast and torch is loaded only where models live.
"""
from nas.lazy import lazy_attributes

__version__ = "0.1.0"

_NAMES = {
    "NasError": "nas.errors:NasError", "Architecture": "nas.space:Architecture", "Block": "nas.space:Block",
    "Stage": "nas.space:Stage", "SearchSpace": "nas.space:SearchSpace", "load_space": "nas.space:load_space",
    "list_spaces": "nas.space:list_spaces", "plan": "nas.layers:plan", "count": "nas.layers:count",
    "LayerSpec": "nas.layers:LayerSpec", "build_model": "nas.nn.build:build_model",
    **{p: f"nas.{p}" for p in ("space", "layers", "nn", "data", "latency", "proxies", "search", "deploy", "cli",
                               "errors", "bits")},
}
__getattr__, __dir__ = lazy_attributes(__name__, _NAMES)
__all__ = sorted(k for k in _NAMES if not _NAMES[k].startswith("nas.") or ":" in _NAMES[k])
