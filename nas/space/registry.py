"""Where spaces are found: the shipped ``search_spaces/<name>.yaml`` (:mod:`nas.paths`; or ``$NAS_SPACES_DIR``)
by name, any YAML by path; each file parsed once per modification time."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from nas.deprecation import renamed_arguments
from nas.errors import NasError, did_you_mean
from nas.paths import SHIPPED_SPACES_DIR
from nas.space.schema import load_space_file
from nas.space.search_space import SearchSpace

SPACES_DIR = Path(os.environ.get("NAS_SPACES_DIR", SHIPPED_SPACES_DIR))


# --------------------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------------------
_LOADED_PATHS: dict[str, str] = {}  # space name -> file: a user space loaded once by path is then found by name


def list_spaces() -> list[str]:
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


@lru_cache(maxsize=None)
def _load_cached(path: str, mtime: float) -> SearchSpace:
    return load_space_file(path)


@renamed_arguments(name_or_path="space")
def load_space(space: str | Path) -> SearchSpace:
    """``space``: a shipped space by name (``search_spaces/<name>.yaml``) or any YAML file by path."""
    text = str(space)
    path = Path(text)
    if not (text.endswith((".yaml", ".yml")) or path.is_file()):
        path = Path(_LOADED_PATHS.get(text, SPACES_DIR / f"{text}.yaml"))
        if not path.is_file():
            names = list_spaces()
            raise NasError(f"unknown search space '{text}'{did_you_mean(text, names)}", argument="space",
                           fix=f"use one of {', '.join(names)} or a path to a YAML file")
    if not path.is_file():
        raise NasError("file not found", where=str(path), fix="check the path or run `nas spaces list`")
    space = _load_cached(str(path.resolve()), path.stat().st_mtime)
    if path.parent.resolve() == SPACES_DIR.resolve() and space.name != path.stem:
        raise NasError(f"name '{space.name}' differs from the file name", where=f"{path}: name",
                       fix=f"set name: {path.stem}")
    _LOADED_PATHS.setdefault(space.name, str(path.resolve()))
    return space
