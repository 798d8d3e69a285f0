"""Where the shipped data lives and where the user's own tables go: one answer for a checkout and a wheel.

Shipped (read-only): ``search_spaces/`` and ``latency_tables/`` at the repository's top level; a wheel carries
them as ``nas/_data/<folder>`` (see ``pyproject.toml``), found first so an installed package works from any
folder. Shipped tables are never written by a command.

The user's tables (written by ``nas lut profile``, ``fit``, ``adapt`` and ``validate --calibrate``, and looked
up before the shipped ones): ``$NAS_TABLES_DIR`` if set (the CLI's ``--tables-dir`` sets it for its process
and the workers it starts), else ``$XDG_DATA_HOME/nas/latency_tables`` (``~/.local/share/nas/latency_tables``).
"""
from __future__ import annotations

import os
from pathlib import Path

from nas.errors import NasError

PACKAGE_DIR = Path(__file__).resolve().parent
TABLES_DIR_ENV = "NAS_TABLES_DIR"


def _shipped(folder: str) -> Path:
    inside = PACKAGE_DIR / "_data" / folder  # an installed wheel
    return inside if inside.is_dir() else PACKAGE_DIR.parent / folder  # a checkout (editable install)


SHIPPED_SPACES_DIR = _shipped("search_spaces")
SHIPPED_TABLES_DIR = _shipped("latency_tables")


def user_tables_dir() -> Path:
    """The folder of the user's own tables and adapted models (it need not exist yet)."""
    env = os.environ.get(TABLES_DIR_ENV, "").strip()
    if env:
        path = Path(env).expanduser()
        if path.exists() and not path.is_dir():
            raise NasError(f"${TABLES_DIR_ENV} is not a folder", where=str(path),
                           fix=f"point {TABLES_DIR_ENV} at a folder")
        return path
    base = os.environ.get("XDG_DATA_HOME", "").strip() or Path.home() / ".local" / "share"
    return Path(base).expanduser() / "nas" / "latency_tables"


def is_shipped(path: str | Path) -> bool:
    """True for a file inside the shipped tables or spaces folder (never to be written)."""
    p = Path(path).resolve()
    return any(p.is_relative_to(d.resolve()) for d in (SHIPPED_TABLES_DIR, SHIPPED_SPACES_DIR))
