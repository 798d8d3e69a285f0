"""A source table adapted to this host in one step (``nas lut adapt --measure-here N``): pick N architectures,
measure each whole on this host, fit the transferred model (:func:`nas.latency.transfer.adapt.adapt`).

* **Which**: a seeded random pool of the space (max(2000, 40 N)), and from it N - 2 (N // 5) picked by
  farthest-point selection (:func:`nas.latency.transfer.suggest.pick_diverse`) over the sources' standardised
  whole-network features plus, weighted double, the first source's log latency and its shares of float and int8
  layers, so they span the source's range of latency and of quantized share; N // 5 of those, spread over the
  latency, are also measured with every block at w8a8 and at w32a32 (their twins, where the space allows those
  bits): the fit then sees fast and slow networks, and the same networks at three precisions, which is what pins
  the float, int8 and other coefficients of a source split by precision (:mod:`nas.latency.transfer.precision`).
* **How**: at the architectures' own bits (``dtype='arch'``, the default: fp32, int8 and int4 layers in one
  network; or every layer at ``fp32`` / ``int8``), exported, quantized and timed exactly as ``nas lut validate``
  times whole networks (:func:`nas.latency.measure.validate.measure_networks`: interleaved rounds, every call
  paired with the reference kernel, the per-call overhead subtracted), ``threads`` onnxruntime threads (default:
  the first source's). Values are ratios × this session's median reference-kernel time: the model records that
  time as its ``reference_ms``, so ``nas lut validate`` measures it later at the same scale (drift removed, as for
  a profiled table; see :mod:`nas.latency.measure.network_times`). A network measured at or below the per-call overhead
  twice is left out (named in the record).
* **Kept**: the measurements go beside the model, ``<name>.measured.csv`` (arch, latency_ms, iqr_ms,
  reference_ms) with ``<name>.measured.yaml`` (this host's fingerprint, the arguments, the session). Running the
  command again with the same arguments (space structure, sources and their content, N, seed, dtype, threads,
  rounds) on the same host reuses them instead of measuring (a refit takes seconds); other arguments or another
  host measure afresh. ``nas lut adapt --measured <name>.measured.csv`` refits from them by hand.
* **Result**: a transferred model like any other, with this host's ``host_fingerprint``; fitted at ``arch`` it
  predicts every dtype its sources price (:class:`~nas.latency.transfer.model.TransferredLatencyModel`).
"""
from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from nas.deprecation import renamed_arguments
from nas.errors import NasError
from nas.fileio import atomic_write_text
from nas.latency.measure.host import differences, fingerprint
from nas.latency.measure.network_times import MIN_K, sidecar_path
from nas.latency.predict import TableLatencyModel
from nas.latency.signatures import check_dtype, deploy
from nas.latency.transfer.adapt import adapt, default_sources, load_sources
from nas.latency.transfer.model import TRANSFER_SUFFIX, Features, TransferredLatencyModel
from nas.latency.transfer.precision import PARTS, part_of
from nas.latency.transfer.suggest import pick_diverse, pool_features
from nas.layers import plan
from nas.space import SearchSpace
from nas.space.arch import Architecture

COMMAND = "nas lut adapt --measure-here"
RECORD_KEYS = ("space", "space_structure", "sources", "n", "seed", "dtype", "threads", "rounds", "precision_split")


@dataclass
class HereResult:
    """What :func:`adapt_here` did: the fitted model (not written yet), where its measurements are, whether they
    were reused, how long measuring took and notes for the user."""

    model: TransferredLatencyModel
    measured_csv: Path
    reused: bool
    seconds: float
    notes: list[str] = field(default_factory=list)


def measurements_path(output: str | Path) -> Path:
    """``<name>.measured.csv`` beside the model file ``<name>.transfer.yaml`` (or ``<file>.measured.csv``)."""
    p = Path(output)
    stem = p.name[: -len(TRANSFER_SUFFIX)] if p.name.endswith(TRANSFER_SUFFIX) else p.stem
    return p.with_name(f"{stem}.measured.csv")


def part_shares(model: TableLatencyModel, arch: Architecture, space: SearchSpace) -> np.ndarray:
    """The shares of ``model``'s latency of ``arch`` in its float, int8 and other layers
    (:data:`nas.latency.transfer.precision.PARTS`)."""
    out = np.zeros(len(PARTS))
    for spec in plan(arch, space):
        out[PARTS.index(part_of(deploy(spec, model.dtype)))] += model.layer_ms(spec, space.name, arch.resolution) or 0.0
    return out / out.sum() if out.sum() > 0 else out


def uniform_twins(arch: Architecture, space: SearchSpace) -> list[Architecture]:
    """``arch`` with every block at w8a8 and at w32a32, where the space allows those bits (its fixed layers keep
    theirs): all-int8 and all-float members of the space, which pin the int8 and float coefficients."""
    out = []
    for w, a in ((8, 8), (32, 32)):
        stages = tuple(replace(st, blocks=tuple(b if b.op == "skip" else
                                                replace(b, wbits=w, abits=a, dw_wbits=None, dw_abits=None)
                                                for b in st.blocks)) for st in arch.stages)
        twin = replace(arch, stages=stages)
        try:
            space.validate(twin)
        except NasError:
            continue
        if twin != arch:
            out.append(twin)
    return out


def pick(space: SearchSpace, n: int, sources: list[TableLatencyModel], *, seed: int = 0,
         pool: int | None = None) -> list[Architecture]:
    """``n`` distinct architectures to measure (see the module docstring): ``n - 2 (n // 5)`` from a random pool,
    spread by farthest-point selection over the sources' features and, weighted double, the first source's log
    latency and shares of float and int8 layers; ``n // 5`` of them, spread over that latency, also as their
    all-w8a8 and all-w32a32 twins (where the space allows those bits), so the fit sees the same networks at three
    precisions. Deterministic under ``seed``."""
    if n < MIN_K:
        raise NasError(f"must be at least {MIN_K}, got {n}", argument="n", fix="20 is a good start")
    size = pool or max(2000, 40 * n)
    drawn = list(dict.fromkeys(space.sample_many(size, seed=seed)))
    if len(drawn) < n:
        raise NasError(f"the space has only {len(drawn)} distinct architectures in a pool of {size}, fewer than {n}",
                       argument="n", fix=f"measure {len(drawn)}")
    features = Features(sources, space)
    x = pool_features(features, drawn)
    lat = np.log(features.matrix(drawn)[:, 0])
    shares = np.array([part_shares(sources[0], a, space) for a in drawn])
    extra = [(c - c.mean()) / c.std() for c in (lat, shares[:, 0], shares[:, 1]) if c.std() > 1e-12]
    x = np.column_stack([x] + [2.0 * c for c in extra])
    m = n // 5
    chosen = pick_diverse(x, n - 2 * m, seed=seed)
    by_latency = sorted(chosen, key=lambda i: lat[i])
    bases = [by_latency[int((j + 0.5) * len(by_latency) / m)] for j in range(m)]
    twins = [t for i in bases for t in uniform_twins(drawn[i], space)]
    result = list(dict.fromkeys([drawn[i] for i in chosen] + twins))
    if len(twins) == 2 * m and len(result) == n:
        return result
    return [drawn[i] for i in pick_diverse(x, n, seed=seed)]  # the space has no distinct uniform twins


@renamed_arguments(space_name="space")
def adapt_here(space: str, n: int, device_name: str, output: str | Path, *, sources: list[str] | None = None,
               seed: int = 0, dtype: str | None = None, threads: int | None = None, rounds: int = 10,
               progress: bool = True) -> HereResult:
    """Adapt ``sources`` (default: every table covering the space) to this host from ``n`` architectures measured
    here (module docstring); the measurements are written beside ``output`` (the model's path) and reused when
    the same arguments were measured on this host before. The model is returned, not written
    (``result.model.write(output)``)."""
    from nas.space import load_space

    space = load_space(space)
    dtype = check_dtype(dtype)
    names = sources or default_sources(space, dtype)
    if not names:
        raise NasError(f"no table covers space {space.name}", argument="space",
                       fix="profile one (`nas lut profile`) or choose a space that `nas lut list` shows")
    models = load_sources(names, space, dtype)
    if threads is None:
        t = str(models[0].table.meta.get("threads", 1))
        threads = int(t) if t.isdigit() else 1
    if threads < 1:
        raise NasError(f"must be at least 1, got {threads}", argument="threads")
    record = {"space": space.name, "space_structure": space.structure_hash,
              "sources": [{"device": m.device, "content_hash": m.table.content_hash()} for m in models],
              "n": int(n), "seed": int(seed), "dtype": dtype, "threads": int(threads), "rounds": int(rounds),
              "precision_split": True}
    csv = measurements_path(output)
    here = fingerprint(threads)
    notes: list[str] = []
    reused, why = _reusable(csv, record, here)
    t0 = time.perf_counter()
    if not reused:
        if why:
            notes.append(f"measured again: {why}")
        _measure(space, pick(space, n, models, seed=seed), record, here, csv, progress=progress, notes=notes)
    else:
        notes.append(f"reused the measurements in {csv} (same arguments, this host): nothing measured")
    seconds = time.perf_counter() - t0
    model = adapt(space.name, str(csv), device_name, sources=list(names), dtype=dtype,
                  threads=threads, precision_split=True)
    model.doc["provenance"]["command"] = COMMAND
    return HereResult(model, csv, reused, seconds, notes)


def _reusable(csv: Path, record: dict, here: dict) -> tuple[bool, str]:
    """(whether ``csv`` holds measurements of exactly ``record`` taken on this host, why not)."""
    from nas.latency.measure.network_times import read_sidecar

    if not csv.is_file():
        return False, ""
    side = read_sidecar(csv)
    old = side.get("arguments") or {}
    changed = [k for k in RECORD_KEYS if old.get(k) != record[k]]
    if changed:
        return False, f"{csv} was measured with other {', '.join(changed)}"
    diff = differences(side.get("host_fingerprint") or {}, here)
    if diff:
        return False, f"{csv} was measured on another host ({'; '.join(diff)})"
    return True, ""


def _measure(space: SearchSpace, archs: list[Architecture], record: dict, here: dict, csv: Path, *,
             progress: bool, notes: list[str]) -> None:
    """Measure ``archs`` whole on this host and write the CSV and its record (the record last: a CSV without
    its record is never reused)."""
    import pandas as pd

    from nas.latency.measure.validate import measure_networks

    t0 = time.perf_counter()
    measured = measure_networks(archs, space, record["dtype"], threads=record["threads"], rounds=record["rounds"],
                                seed=record["seed"], progress=progress)
    failures = measured.failures or [None] * len(archs)
    kept = [(a, v) for a, v, why in zip(archs, measured.values, failures) if why is None]
    left = [space.format(a) for a, why in zip(archs, failures) if why is not None]
    if left:
        notes.append(f"{len(left)} network(s) left out, {next(w for w in failures if w)}: " + ", ".join(left))
    if len(kept) < MIN_K:
        raise NasError(f"only {len(kept)} of {len(archs)} networks could be timed", argument="n",
                       fix="measure more (n=20), or on an idle machine")
    sidecar_path(csv).unlink(missing_ok=True)  # a CSV and an old record never pair up
    csv.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(csv, pd.DataFrame({"arch": [space.format(a) for a, _ in kept],
                                         "latency_ms": [ms for _, (ms, _) in kept],
                                         "iqr_ms": [iqr for _, (_, iqr) in kept],
                                         "reference_ms": measured.reference_ms}).to_csv(index=False))
    import yaml

    side = {"command": COMMAND, "arguments": record, "host_fingerprint": here,
            "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "session_reference_ms": measured.session_reference_ms,
            "seconds": round(time.perf_counter() - t0, 1), "left_out": left}
    atomic_write_text(sidecar_path(csv), yaml.safe_dump(side, sort_keys=False, allow_unicode=True))
