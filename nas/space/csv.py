"""Architectures read from a user's CSV (a column ``arch``): one place for the file and row errors."""
from __future__ import annotations

from nas.errors import NasError, first_line


def read_arch_csv(path: str):
    """The CSV as a string DataFrame; a missing file, unreadable CSV or missing ``arch`` column is a NasError."""
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise NasError("file not found", where=str(path)) from None
    except IsADirectoryError:
        raise NasError("is a folder, not a CSV file", where=str(path), fix="give the CSV file") from None
    except OSError as exc:  # permission denied, ...
        raise NasError(f"cannot read it ({exc.strerror or type(exc).__name__})", where=str(path)) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise NasError(f"not a readable CSV ({first_line(exc)})", where=str(path)) from None
    if "arch" not in df.columns:
        raise NasError(f"no column 'arch' (columns: {', '.join(df.columns) or 'none'})", where=str(path),
                       fix="name the architecture column 'arch'")
    return df


def parse_arch_row(space, text: str, path: str, index: int):
    """Parse row ``index`` (0-based) of ``path``; errors name the file and the 1-based row."""
    try:
        return space.parse(text)
    except NasError as exc:
        raise NasError(str(exc), where=f"{path} row {index + 1}") from None


def read_archs(space, path: str) -> list:
    """Every architecture of the CSV, in row order."""
    return [parse_arch_row(space, t, path, i) for i, t in enumerate(read_arch_csv(path)["arch"])]
