"""Files: written so that an interruption never leaves half a file (a fresh temp file in the same folder, synced,
then renamed over the target), and YAML read with one precise error (file, line, column) for every reader."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable, IO, Mapping

from nas.errors import NasError

PARQUET_ENGINES = ("pyarrow", "fastparquet")  # what pandas writes Parquet with


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


def replace_folder(new: str | Path, target: str | Path) -> Path:
    """Put the complete folder ``new`` in place of ``target`` as a whole (its files synced first): readers see
    the old set of files or the new one, never a mix (e.g. a model, its quantized file and its card).

    POSIX renames a folder only over an empty one, so this takes two renames: ``target`` moves aside to a unique
    ``.<name>.old-*`` folder beside it, ``new`` takes its place, the old one is removed. A crash between the two
    leaves both complete sets and no ``target``; the next replace of ``target`` removes what was left aside."""
    import shutil

    new, target = Path(new), Path(target)
    for f in new.iterdir():
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(new)
    if target.exists():
        os.replace(target, tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(new, target)
    _fsync_dir(target.parent)
    for aside in target.parent.iterdir():
        if aside.name.startswith(f".{target.name}.old-") and aside.is_dir():
            shutil.rmtree(aside, ignore_errors=True)
    return target


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    data = text.encode()
    return atomic_write(path, lambda f: f.write(data))


def check_output_file(path: str | Path, *, argument: str = "output",
                      reads: Mapping[str, str | Path | None] | None = None) -> Path:
    """Check, before any work, that ``path`` can be written as a file; a NasError naming ``argument`` if not.

    Refused: an existing folder; a file that the same call reads (``reads``: input argument -> path, e.g. the
    architecture CSV: writing the results over it would lose the input); a folder that cannot be made (a file
    is in the way) or written in. Nothing is created: a missing folder is made when the file is written."""
    path = Path(path)
    if path.is_dir():
        raise NasError(f"'{path}' is a folder; a file is written here", argument=argument,
                       fix=f"give a file name, e.g. {argument}={path / 'results.csv'}")
    for name, other in (reads or {}).items():
        if other and _same_file(path, Path(other)):
            raise NasError(f"'{path}' is a file this call reads; writing it would overwrite the input",
                           argument=argument,
                           fix=f"write to another file than {name}={other}, e.g. {argument}={_sibling(path)}")
    folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NasError(f"cannot make folder '{folder}': '{existing}' is a file", argument=argument,
                       fix="choose another folder")
    problem = _probe_folder(existing) if existing == folder else (
        None if os.access(existing, os.W_OK | os.X_OK) else "permission denied")
    if problem:
        raise NasError(f"cannot write in folder '{existing}' ({problem})", argument=argument,
                       fix="choose a folder you can write to")
    return path


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _sibling(path: Path) -> Path:
    return path.with_name(f"{path.stem}.out{path.suffix or '.csv'}")


def _probe_folder(folder: Path) -> str | None:
    """Why a file cannot be created in ``folder`` (None: it can): a temp file is created and removed."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".nas-write-check.", dir=folder)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    os.close(fd)
    os.unlink(tmp)
    return None


def check_table_output(path: str | Path, *, argument: str = "output",
                       reads: Mapping[str, str | Path | None] | None = None) -> Path:
    """:func:`check_output_file` for a results table (:func:`write_table`): ``.parquet`` also needs pyarrow or
    fastparquet installed (pandas writes Parquet with one of them); any other name is written as CSV."""
    import importlib.util

    path = check_output_file(path, argument=argument, reads=reads)
    if path.suffix == ".parquet" and not any(importlib.util.find_spec(m) for m in PARQUET_ENGINES):
        raise NasError("writing Parquet needs pyarrow or fastparquet, and neither is installed", argument=argument,
                       fix=f"pip install pyarrow, or write CSV: {argument}={path.with_suffix('.csv')}")
    return path


def write_table(df, path: str | Path) -> Path:
    """Write a DataFrame (no index) atomically: Parquet for a ``.parquet`` name, else CSV (check the name first
    with :func:`check_table_output`)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return atomic_write(path, lambda f: df.to_parquet(f, index=False))
    return atomic_write(path, lambda f: df.to_csv(f, index=False))


def read_yaml(path: str | Path, *, not_found_fix: str | None = None) -> Any:
    """The parsed YAML of ``path``; a missing file or malformed YAML is a NasError naming the file (and the line
    and column of the mistake)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise NasError("file not found", where=str(path), fix=not_found_fix) from None
    return parse_yaml(text, where=str(path))


def parse_yaml(text: str, *, where: str) -> Any:
    """The parsed YAML ``text``; malformed YAML is a NasError naming ``where`` (a file, or where the text was
    stored) and the line and column of the mistake."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise NasError(f"malformed YAML{loc}: {problem}", where=where,
                       fix="check indentation and brackets on that line") from None
