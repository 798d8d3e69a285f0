"""Whole-network latency measurements as users bring them: a CSV with columns ``arch, latency_ms``, read once for
``nas lut adapt`` (transfer) and ``nas lut fit`` (a fitted table).

Units (one convention for every whole-network time this project writes): a time measured with the paired
protocol (:mod:`nas.latency.measure.timing`) is a ratio to the reference kernel times a reference time, and
is written together with that reference time as the column ``reference_ms`` (``nas lut validate -o``, ``nas lut
adapt --measure-here``). A model fitted from such times records it as its own ``reference_ms``, and ``nas lut
validate`` measures the model in those units, whatever speed the machine runs at that day. Rows with different
``reference_ms`` are brought to the median one (value × median / own). A CSV without the column holds plain
milliseconds of its device (a stopwatch, a vendor app), and a model fitted from it records none.

``measured_ms`` (the column ``nas lut validate -o`` writes) is read where ``latency_ms`` is absent. A sidecar
``<name>.yaml`` beside ``<name>.csv`` (written by ``nas lut adapt --measure-here``) records the host the
measurements were taken on (``host_fingerprint``) and the arguments they were taken with.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nas.errors import NasError
from nas.space import SearchSpace
from nas.space.arch import Architecture

MIN_K = 3
REFERENCE_COLUMN = "reference_ms"


def read_measurements(path: str, space: SearchSpace) -> tuple[list[Architecture], np.ndarray, list[str]]:
    """Parse ``arch, latency_ms`` rows; repeated architectures are merged (median). Errors name the row."""
    from nas.space.csv import parse_arch_row, read_arch_csv

    df = read_arch_csv(path)
    column = "latency_ms" if "latency_ms" in df.columns or "measured_ms" not in df.columns else "measured_ms"
    if column not in df.columns:
        raise NasError(f"no column 'latency_ms' (columns: {', '.join(df.columns)})", where=path,
                       fix="the CSV needs columns arch, latency_ms (`nas lut suggest` writes one to fill in)")
    scale = _to_common_reference(df, path)
    by_arch: dict[Architecture, list[float]] = {}
    texts: dict[Architecture, str] = {}
    for i, (text, lat) in enumerate(zip(df["arch"], df[column])):
        where = f"{path} row {i + 1}"
        arch = parse_arch_row(space, text, path, i)
        try:
            value = float(lat)
        except ValueError:
            raise NasError(f"{column} '{lat}' is not a number", where=where,
                           fix="fill in the measured whole-network latency in ms") from None
        if not math.isfinite(value) or value <= 0:
            raise NasError(f"{column} must be a positive number, got {lat}", where=where,
                           fix="fill in the measured whole-network latency in ms, or remove the row")
        by_arch.setdefault(arch, []).append(value * scale[i])
        texts.setdefault(arch, str(text))
    if len(by_arch) < MIN_K:
        raise NasError(f"{len(by_arch)} distinct measured architecture(s); at least {MIN_K} are needed "
                       "(10-20 recommended)", where=path,
                       fix="measure more (10-20 architectures; `nas lut suggest` picks which)")
    archs = list(by_arch)
    return archs, np.array([float(np.median(by_arch[a])) for a in archs]), [texts[a] for a in archs]


def reference_ms(path: str) -> float | None:
    """The reference time the CSV's values are expressed at after :func:`read_measurements` (the median of its
    ``reference_ms`` column), or None for plain milliseconds (no such column)."""
    from nas.space.csv import read_arch_csv

    refs = _references(read_arch_csv(path), path)
    return None if refs is None else float(np.median(refs))


def _references(df, path: str) -> np.ndarray | None:
    if REFERENCE_COLUMN not in df.columns:
        return None
    refs = []
    for i, text in enumerate(df[REFERENCE_COLUMN]):
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        if not math.isfinite(v) or v <= 0:
            raise NasError(f"{REFERENCE_COLUMN} must be a positive number, got {text!r}", where=f"{path} row {i + 1}",
                           fix="keep the reference_ms the measurement tool wrote, or drop the column (plain ms)")
        refs.append(v)
    return np.array(refs)


def _to_common_reference(df, path: str) -> np.ndarray:
    """Per row, the factor that brings its value to the median ``reference_ms`` (all 1 without the column)."""
    refs = _references(df, path)
    return np.ones(len(df)) if refs is None or not len(refs) else float(np.median(refs)) / refs


def sidecar_path(csv_path: str | Path) -> Path:
    """``<name>.yaml`` beside ``<name>.csv``: where the host and arguments of measurements are recorded."""
    p = Path(csv_path)
    return p.with_name(p.name[: -len(".csv")] + ".yaml" if p.name.endswith(".csv") else p.name + ".yaml")


def read_sidecar(csv_path: str | Path) -> dict:
    """The measurements' sidecar (see :func:`sidecar_path`), or {} when there is none."""
    from nas.fileio import read_yaml

    path = sidecar_path(csv_path)
    if not path.is_file():
        return {}
    doc = read_yaml(path)
    if not isinstance(doc, dict):
        raise NasError("measurement record is not a mapping", where=str(path),
                       fix="delete it (the measurements are then plain, of an unknown host)")
    return doc


def origin(csv_path: str | Path, host: str | None = None) -> dict:
    """What a model fitted from these measurements records about them: ``reference_ms`` (their units, when the
    CSV has the column) and the host -- ``host`` as the user names it, else the sidecar's ``host_fingerprint``
    (measured by this project there), else ``host: unknown``. Never this machine's, unless it measured them."""
    out: dict = {}
    ref = reference_ms(str(csv_path))
    if ref is not None:
        out["reference_ms"] = ref
    side = read_sidecar(csv_path)
    if host is not None and str(host).strip():
        out["host"] = str(host).strip()
    elif side.get("host_fingerprint"):
        out["host_fingerprint"] = side["host_fingerprint"]
    else:
        out["host"] = "unknown"
    if side.get("arguments"):
        out["measured_with"] = side["arguments"]
    return out
