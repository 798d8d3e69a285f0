"""Hardware-aware neural architecture search for MobileNet-style spaces.

Data flow: search_spaces/*.yaml -> SearchSpace -> Architecture -> layer plan (LayerSpec) -> torch model /
params+MACs / latency-table signatures -> Optuna study -> Pareto front -> exported ONNX.

A lazy facade: ``import nas`` loads nothing heavy; each name below is imported on first use, so
``nas --help`` stays fast and torch is loaded only where models live.
"""
import importlib

__version__ = "0.1.0"

_NAMES = {
    "NasError": "nas.errors", "Architecture": "nas.space", "Block": "nas.space", "Stage": "nas.space",
    "SearchSpace": "nas.space", "load_space": "nas.space", "list_spaces": "nas.space",
    "plan": "nas.layers", "count": "nas.layers", "LayerSpec": "nas.layers", "build_model": "nas.nn.build",
}
_PACKAGES = ("space", "layers", "nn", "data", "latency", "proxies", "search", "deploy", "cli", "errors", "bits")


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    if name in _PACKAGES:
        return importlib.import_module(f"nas.{name}")
    raise AttributeError(f"module 'nas' has no attribute {name!r}")


def __dir__():
    return sorted([*_NAMES, *_PACKAGES, "__version__"])


__all__ = sorted(_NAMES)
