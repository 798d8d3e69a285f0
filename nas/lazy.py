"""Package attributes imported on first use (PEP 562): importing a package costs nothing until a name is used,
so `nas --help` does not load numpy, torch, optuna or onnxruntime."""
from __future__ import annotations

import importlib


def lazy_attributes(package: str, names: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package``. ``names`` maps an attribute to ``"module:name"`` (that name of
    that module) or ``"module"`` (the module itself)."""

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attr = names[name].partition(":")
        value = importlib.import_module(module)
        return getattr(value, attr) if attr else value

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
