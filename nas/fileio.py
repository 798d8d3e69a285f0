"""Files: written so that an interruption never leaves half a file (a fresh temp file in the same folder, synced,
then renamed over the target), and YAML read with one precise error (file, line, column) for every reader."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable, IO

from nas.errors import NasError


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(f)`` on a new temp file beside ``path``, sync it and rename it over ``path``.

    Readers see the old or the new file, never a mix. The temp file has a unique name made with ``O_EXCL`` (two
    writers never share one, and a planted symlink is never followed), and it is removed if ``write`` fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.is_file() else 0o644)  # mkstemp makes it 0600
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    data = text.encode()
    return atomic_write(path, lambda f: f.write(data))


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
