"""Files: written so that an interruption never leaves half a file (temp file in the same folder + rename), and
YAML read with one precise error (file, line, column) for every reader."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nas.errors import NasError


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (readers see the old or the new file, never a mix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def read_yaml(path: str | Path, *, not_found_fix: str | None = None) -> Any:
    """The parsed YAML of ``path``; a missing file or malformed YAML is a NasError naming the file (and the line
    and column of the mistake)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise NasError("file not found", where=str(path), fix=not_found_fix) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise NasError(f"malformed YAML{loc}: {problem}", where=str(path),
                       fix="check indentation and brackets on that line") from None
