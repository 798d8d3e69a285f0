"""Whole-network latency measurements as users bring them: a CSV with columns ``arch, latency_ms``, read once for
``nas lut adapt`` (transfer) and ``nas lut fit`` (a fitted table)."""
from __future__ import annotations

import math

import numpy as np

from nas.errors import NasError
from nas.space import SearchSpace
from nas.space.arch import Architecture

MIN_K = 3


def read_measurements(path: str, space: SearchSpace) -> tuple[list[Architecture], np.ndarray, list[str]]:
    """Parse ``arch, latency_ms`` rows; repeated architectures are merged (median). Errors name the row."""
    from nas.space.csv import parse_arch_row, read_arch_csv

    df = read_arch_csv(path)
    if "latency_ms" not in df.columns:
        raise NasError(f"no column 'latency_ms' (columns: {', '.join(df.columns)})", where=path,
                       fix="the CSV needs columns arch, latency_ms (`nas lut suggest` writes one to fill in)")
    by_arch: dict[Architecture, list[float]] = {}
    texts: dict[Architecture, str] = {}
    for i, (text, lat) in enumerate(zip(df["arch"], df["latency_ms"])):
        where = f"{path} row {i + 1}"
        arch = parse_arch_row(space, text, path, i)
        try:
            value = float(lat)
        except ValueError:
            raise NasError(f"latency_ms '{lat}' is not a number", where=where,
                           fix="fill in the measured whole-network latency in ms") from None
        if not math.isfinite(value) or value <= 0:
            raise NasError(f"latency_ms must be a positive number, got {lat}", where=where,
                           fix="fill in the measured whole-network latency in ms, or remove the row")
        by_arch.setdefault(arch, []).append(value)
        texts.setdefault(arch, str(text))
    if len(by_arch) < MIN_K:
        raise NasError(f"{len(by_arch)} distinct measured architecture(s); at least {MIN_K} are needed "
                       "(10-20 recommended)", where=path,
                       fix="measure more (10-20 architectures; `nas lut suggest` picks which)")
    archs = list(by_arch)
    return archs, np.array([float(np.median(by_arch[a])) for a in archs]), [texts[a] for a in archs]
