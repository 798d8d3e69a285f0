"""Latency tables on disk: one CSV (a row per layer signature) plus one metadata YAML, both plain text.

CSV columns, in order:

* the layer signature, one column per :data:`nas.layers.SIGNATURE_FIELDS`
  (``op,h,w,cin,cout,kernel,stride,expand,mid,groups,se,act,wbits,abits``; ``dw_wbits,dw_abits``, the depth-wise
  conv's bits, only in tables with per-role rows: absent or empty = ``wbits,abits``);
* ``latency_ms`` (median, or the published mean), ``spread_ms`` (IQR or std: the metadata's ``spread``),
  ``repeats`` (timed runs behind the value; 0 when the source does not say);
* optional ``resolution`` (the network input resolution the row was measured within; empty = any network:
  OFA measured its blocks once per input resolution, so the same signature has one value per resolution),
  ``energy_mJ``, ``source_key`` (the key in the table it was converted from) and ``note``.

Rows are unique per (signature, resolution); a lookup tries the architecture's resolution, then "any".
Rows of op ``boundary`` (``nas.layers.boundary_spec``: a tensor's shape, the bits of the conv writing it as
``wbits,abits`` and of the conv reading it as ``dw_wbits,dw_abits``) are signed corrections, not layers: what a
whole network pays at that precision change beyond the two layers' own rows; metadata ``boundaries`` lists
the spaces whose boundary rows were measured (predictions add them for those spaces only).

Metadata ``<name>.meta.yaml``: ``schema_version``, ``device``, ``description``, ``runtime``,
``runtime_version``, ``threads``, ``batch``, ``dtype``, ``date``, ``protocol``, ``spread``, ``spaces`` and
``provenance`` (``source``, ``commit``, ``license``); optionally ``calibration`` (written by
``nas lut validate --calibrate``), ``reference_ms`` (tables written by ``nas lut profile``: the reference
kernel's time that turns paired ratios into milliseconds, see :mod:`nas.latency.measure.profile`),
``granularity`` (``layer``, the default: a row per layer; ``conv``: a row per conv, an ``ir`` block priced as
the sum of ``LayerSpec.convs()``, as APQ keys its BitFusion table), ``fixed`` (a list of
``{space, layers, latency_ms, energy_mJ, source_key}``: fixed layers of one space priced together by one
published constant, e.g. APQ's ``head`` and ``tail``) and free-form extras.
No pickles anywhere.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from nas.deprecation import renamed_arguments
from nas.errors import NasError, did_you_mean
from nas.fileio import atomic_write_text, read_yaml
from nas.paths import SHIPPED_TABLES_DIR, is_shipped, user_tables_dir
from nas.layers import SIGNATURE_FIELDS, LayerSpec

SCHEMA_VERSION = 1
SHIPPED_DIR = SHIPPED_TABLES_DIR
META_SUFFIX = ".meta.yaml"

VALUE_COLUMNS = ("latency_ms", "spread_ms", "repeats")
ROLE_COLUMNS = ("dw_wbits", "dw_abits")  # the last two signature fields; optional (tables before per-role bits)
OPTIONAL_COLUMNS = ("resolution", "energy_mJ", "source_key", "note") + ROLE_COLUMNS
REQUIRED_COLUMNS = SIGNATURE_FIELDS[:-2] + VALUE_COLUMNS
REQUIRED_META = ("schema_version", "device", "description", "runtime", "runtime_version", "threads", "batch",
                 "dtype", "date", "protocol", "spread", "spaces", "provenance")
REQUIRED_PROVENANCE = ("source", "commit", "license")

_INT_FIELDS = {"h", "w", "cin", "cout", "kernel", "stride", "mid", "groups", "wbits", "abits", "dw_wbits", "dw_abits"}
_OPS = ("conv", "ir", "skip", "pool", "linear", "boundary")


@dataclass
class Entry:
    """One measured signature."""

    latency_ms: float
    spread_ms: float = 0.0
    repeats: int = 0
    energy_mJ: float | None = None
    source_key: str = ""
    note: str = ""


GRANULARITIES = ("layer", "conv")
FIXED_KEYS = ("space", "layers", "latency_ms")


@dataclass(frozen=True)
class FixedGroup:
    """Fixed layers (by plan name) of one space that a table prices together with one entry."""

    layers: tuple[str, ...]
    entry: Entry


@dataclass
class LatencyTable:
    """A device's table in memory: metadata plus (resolution or 0, signature tuple) -> Entry, in file order."""

    meta: dict
    entries: dict[tuple[int, tuple], Entry] = field(default_factory=dict)
    csv_path: Path | None = None
    added: set = field(default_factory=set, compare=False, repr=False)  # keys add()ed since it was read

    def boundary_spaces(self) -> list[str]:
        """Spaces whose precision boundaries the table prices (metadata ``boundaries``, written by the profiler
        when it measures boundary rows of the space)."""
        return list(self.meta.get("boundaries") or [])

    @property
    def granularity(self) -> str:
        return str(self.meta.get("granularity", "layer"))

    def fixed_groups(self, space_name: str) -> list[FixedGroup]:
        return [FixedGroup(tuple(g["layers"]), Entry(float(g["latency_ms"]), energy_mJ=g.get("energy_mJ"),
                                                     source_key=str(g.get("source_key", ""))))
                for g in self.meta.get("fixed") or [] if g["space"] == space_name]

    @property
    def device(self) -> str:
        return str(self.meta["device"])

    @property
    def meta_path(self) -> Path | None:
        return meta_path_for(self.csv_path) if self.csv_path else None

    def content_hash(self) -> str:
        """sha256 (first 16 hex) of the CSV text as written: identifies the measured values."""
        return hashlib.sha256(self.to_csv_text().encode()).hexdigest()[:16]

    def lookup(self, signature: tuple, resolution: int) -> Entry | None:
        entry = self.entries.get((resolution, signature))
        return entry if entry is not None else self.entries.get((0, signature))

    def add(self, signature: tuple, entry: Entry, *, resolution: int = 0, where: str = "table") -> None:
        key = (resolution, signature)
        old = self.entries.get(key)
        if old is not None and (old.latency_ms != entry.latency_ms or old.energy_mJ != entry.energy_mJ):
            raise NasError(f"duplicate signature {_where_key(key)} with different values "
                           f"({old.latency_ms} vs {entry.latency_ms} ms)", where=where,
                           fix="keep one row per signature")
        if old is None:
            self.entries[key] = entry
            self.added.add(key)

    # --- text ------------------------------------------------------------------------------------------
    def to_csv_text(self) -> str:
        buf = io.StringIO()
        roles = any(sig[-4:-2] != sig[-2:] for _, sig in self.entries)
        cols = list(REQUIRED_COLUMNS) + list(OPTIONAL_COLUMNS if roles else OPTIONAL_COLUMNS[:-2])
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(cols)
        for (res, sig), e in self.entries.items():
            own = ["" if v == base else _fmt(v) for v, base in zip(sig[-2:], sig[-4:-2])] if roles else []
            writer.writerow([_fmt(v) for v in sig[:-2]] + [
                repr(float(e.latency_ms)), repr(float(e.spread_ms)), int(e.repeats), res or "",
                "" if e.energy_mJ is None else repr(float(e.energy_mJ)), e.source_key, e.note] + own)
        return buf.getvalue()

    def write_merged(self, csv_path: str | Path, *, union_keys: tuple[str, ...] = ("spaces", "boundaries")
                     ) -> Path:
        """Write under an exclusive lock, merged with what another writer saved since this table was read: the
        rows this object added win, every other row on disk is kept, and the metadata lists in ``union_keys``
        (and the comma-separated ``dtype``) are united. Two `nas lut profile` runs into one table lose nothing."""
        csv_path = Path(csv_path)
        with locked(csv_path):
            if csv_path.is_file() and meta_path_for(csv_path).is_file():
                disk = read_table(csv_path)
                merged = dict(disk.entries)
                merged.update({k: self.entries[k] for k in self.added})
                for k in union_keys:
                    both = set(disk.meta.get(k) or []) | set(self.meta.get(k) or [])
                    if both:
                        self.meta[k] = sorted(both)
                dtypes = set(str(disk.meta.get("dtype", "")).split(",")) | set(str(self.meta["dtype"]).split(","))
                self.meta["dtype"] = ",".join(sorted(d for d in dtypes if d))
                self.entries = merged
            self.write(csv_path)
            self.added = set()
        return csv_path

    def write(self, csv_path: str | Path) -> Path:
        """Write CSV and metadata, each atomically (``nas.fileio``), so an interrupted profile loses nothing."""
        csv_path = Path(csv_path)
        meta = dict(self.meta)
        meta["schema_version"] = SCHEMA_VERSION
        meta["rows"] = len(self.entries)
        atomic_write_text(csv_path, self.to_csv_text())
        atomic_write_text(meta_path_for(csv_path), yaml.safe_dump(meta, sort_keys=False, allow_unicode=True))
        self.csv_path = csv_path
        self.meta = meta
        return csv_path


@contextmanager
def locked(csv_path: Path):
    """An exclusive advisory lock on ``<table>.lock`` for a read-merge-write (POSIX; elsewhere no lock)."""
    try:
        import fcntl
    except ImportError:  # Windows: writes stay atomic, concurrent writers are not merged
        yield
        return
    lock = csv_path.with_name(csv_path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def signature_key(signature: tuple) -> str:
    """The readable key (``LayerSpec.key``) of a signature tuple."""
    return LayerSpec(name="", **dict(zip(SIGNATURE_FIELDS, signature))).key


def _where_key(key: tuple[int, tuple]) -> str:
    res, sig = key
    return signature_key(sig) + (f" at resolution {res}" if res else "")


def meta_path_for(csv_path: Path) -> Path:
    return csv_path.with_name(csv_path.name[: -len(".csv")] + META_SUFFIX if csv_path.name.endswith(".csv")
                              else csv_path.name + META_SUFFIX)


# --------------------------------------------------------------------------------------------------------
# finding tables
# --------------------------------------------------------------------------------------------------------
def table_dirs() -> list[Path]:
    """Where device names are looked up, first match wins: the user's table folder
    (:func:`nas.paths.user_tables_dir`), the folders on $NAS_LATENCY_TABLES (os.pathsep-separated, read only),
    then the shipped tables."""
    extra = [Path(p) for p in os.environ.get("NAS_LATENCY_TABLES", "").split(os.pathsep) if p]
    return [user_tables_dir(), *extra, SHIPPED_DIR]


def list_devices() -> dict[str, Path]:
    """Device name -> CSV path, for every table in :func:`table_dirs` (earlier dirs win)."""
    found: dict[str, Path] = {}
    for d in table_dirs():
        for meta in sorted(d.glob("*" + META_SUFFIX)):
            name = meta.name[: -len(META_SUFFIX)]
            found.setdefault(name, meta.with_name(name + ".csv"))
    return found


def list_transferred() -> dict[str, Path]:
    """Device name -> file, for every transferred model (``<name>.transfer.yaml``, written by `nas lut adapt`)
    in :func:`table_dirs` (earlier dirs win)."""
    found: dict[str, Path] = {}
    for d in table_dirs():
        for path in sorted(d.glob("*.transfer.yaml")):
            found.setdefault(path.name[: -len(".transfer.yaml")], path)
    return found


_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def check_device_name(name: str, *, argument: str = "device_name") -> str:
    """A device name that is a plain file name: letters, digits, '.', '_', '-'; not starting with '.'."""
    if not name or name.startswith(".") or not set(name) <= _NAME_CHARS:
        raise NasError(f"invalid device name '{name}'", argument=argument,
                       fix="use letters, digits, '.', '_' and '-' only, e.g. my-pi4")
    return name


def new_table_path(device_name: str, *, out_dir: str | Path | None = None, suffix: str = ".csv",
                   argument: str = "device_name") -> Path:
    """Where a command writes a table (``.csv``) or model (``.transfer.yaml``) it creates: ``out_dir`` or the
    user's table folder (:func:`nas.paths.user_tables_dir`). Shipped tables are never written, and a table in
    the user's folder may not take a shipped table's name (it would hide the published one)."""
    check_device_name(device_name, argument=argument)
    folder = Path(out_dir) if out_dir is not None else user_tables_dir()
    path = folder / f"{device_name}{suffix}"
    if is_shipped(path):
        raise NasError("shipped tables are never written", where=str(path),
                       fix="leave out_dir out (the user's table folder) or name another folder")
    shipped = {p.name[: -len(META_SUFFIX)] for p in SHIPPED_DIR.glob("*" + META_SUFFIX)}
    shipped |= {p.name[: -len(".transfer.yaml")] for p in SHIPPED_DIR.glob("*.transfer.yaml")}
    if out_dir is None and device_name in shipped:
        raise NasError(f"'{device_name}' is a shipped table; a table of yours with that name would hide it",
                       argument=argument, fix=f"choose another name, e.g. {device_name}-here")
    return path


@renamed_arguments(name_or_path="device")
def resolve(device: str | Path) -> Path:
    """A device name or a path to a table's CSV / metadata file -> the CSV path."""
    text = str(device)
    p = Path(text)
    if text.endswith(META_SUFFIX):
        return p.with_name(p.name[: -len(META_SUFFIX)] + ".csv")
    if text.endswith(".csv") or os.sep in text or "/" in text:
        return p
    devices = list_devices()
    if text not in devices:
        names = list(devices) + list(list_transferred())
        raise NasError(f"unknown device '{text}'{did_you_mean(text, names)}", argument="device",
                       fix=f"use one of {', '.join(names) or '(none)'} or the path of a table's CSV; "
                           "`nas lut list` shows them")
    return devices[text]


# --------------------------------------------------------------------------------------------------------
# reading + validation
# --------------------------------------------------------------------------------------------------------
@renamed_arguments(name_or_path="device")
def read_table(device: str | Path) -> LatencyTable:
    """Load and validate a table (a device name, or a table's CSV / metadata path); every problem is a
    NasError naming the file, row and column."""
    csv_path = resolve(device)
    meta_path = meta_path_for(csv_path)
    if not csv_path.is_file():
        raise NasError("latency table CSV not found", where=str(csv_path),
                       fix="give the .csv written by `nas lut profile` or a device from `nas lut list`")
    if not meta_path.is_file():
        raise NasError("metadata file missing next to the table", where=str(meta_path),
                       fix="keep <name>.csv and <name>.meta.yaml together")
    meta = read_meta(meta_path)
    table = LatencyTable(meta=meta, csv_path=csv_path)
    measured_here = "fitted" in meta or "reference_ms" in meta  # profiled or fitted by this project
    with open(csv_path, newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise NasError("empty file", where=str(csv_path)) from None
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise NasError(f"missing column(s) {', '.join(missing)}", where=str(csv_path),
                           fix=f"the header must contain {','.join(REQUIRED_COLUMNS)}")
        unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
        if unknown:
            raise NasError(f"unknown column(s) {', '.join(unknown)}", where=str(csv_path),
                           fix=f"allowed optional columns: {', '.join(OPTIONAL_COLUMNS)}")
        idx = {c: header.index(c) for c in header}
        seen: dict[tuple, int] = {}
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            where = f"{csv_path} line {lineno}"
            if len(row) != len(header):
                raise NasError(f"has {len(row)} fields, the header has {len(header)}", where=where)
            sig = tuple(_parse_sig_field(f, row[idx[f]], where) for f in SIGNATURE_FIELDS[:-2])
            sig += tuple(_parse_sig_field(f, row[idx[f]], where) if f in idx and row[idx[f]].strip() else base
                         for f, base in zip(ROLE_COLUMNS, sig[-2:]))
            lat = _parse_float(row[idx["latency_ms"]], "latency_ms", where, signed=sig[0] == "boundary")
            if measured_here and lat <= 0 and sig[0] != "boundary" and _computes(sig):
                raise NasError(f"latency_ms is {lat} for a computing layer", where=where,
                               fix="delete the row: `nas lut profile` measures it again (a fitted table: refit "
                                   "with more measurements)")
            spread = _parse_float(row[idx["spread_ms"]], "spread_ms", where)
            repeats = _parse_int(row[idx["repeats"]], "repeats", where)
            res = 0
            if "resolution" in idx and row[idx["resolution"]].strip() != "":
                res = _parse_int(row[idx["resolution"]], "resolution", where)
            energy = None
            if "energy_mJ" in idx and row[idx["energy_mJ"]].strip() != "":
                energy = _parse_float(row[idx["energy_mJ"]], "energy_mJ", where)
            if (res, sig) in seen:
                raise NasError(f"duplicate signature {_where_key((res, sig))} (first on line {seen[res, sig]})",
                               where=where, fix="keep one row per signature")
            seen[res, sig] = lineno
            table.entries[res, sig] = Entry(lat, spread, repeats, energy,
                                       row[idx["source_key"]] if "source_key" in idx else "",
                                       row[idx["note"]] if "note" in idx else "")
    if not table.entries:
        raise NasError("table has no rows", where=str(csv_path))
    return table


def _computes(sig: tuple) -> bool:
    """Whether a signature's layer runs anything (:attr:`nas.layers.LayerSpec.computes`: not an identity skip)."""
    op, cin, cout, stride = sig[0], sig[3], sig[4], sig[6]
    return not (op == "skip" and stride == 1 and cin == cout)


def _check_granularity(meta: dict, meta_path: Path) -> None:
    if meta.get("granularity", "layer") not in GRANULARITIES:
        raise NasError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {meta['granularity']!r}",
                       where=f"{meta_path}: granularity")
    fixed = meta.get("fixed") or []
    if not isinstance(fixed, list):
        raise NasError("fixed must be a list of {space, layers, latency_ms[, energy_mJ, source_key]}",
                       where=f"{meta_path}: fixed")
    for i, g in enumerate(fixed):
        here = f"{meta_path}: fixed[{i}]"
        if not isinstance(g, dict) or any(k not in g for k in FIXED_KEYS):
            raise NasError(f"needs {', '.join(FIXED_KEYS)}", where=here)
        if not isinstance(g["layers"], list) or not g["layers"]:
            raise NasError("layers must be a non-empty list of plan layer names (e.g. stem.0)", where=here)
        for k in ("latency_ms", "energy_mJ"):
            v = g.get(k, 1.0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise NasError(f"{k} must be a positive number, got {v!r}", where=f"{here}.{k}")


def read_meta(meta_path: Path) -> dict:
    meta = read_yaml(meta_path)
    if not isinstance(meta, dict):
        raise NasError("metadata must be a mapping", where=str(meta_path))
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise NasError(f"missing key(s) {', '.join(missing)}", where=str(meta_path),
                       fix=f"metadata needs {', '.join(REQUIRED_META)}")
    if meta["schema_version"] != SCHEMA_VERSION:
        raise NasError(f"schema_version {meta['schema_version']!r} is not supported (this version reads "
                       f"{SCHEMA_VERSION})", where=f"{meta_path}: schema_version",
                       fix="regenerate the table with this version of nas (`nas lut profile` or "
                           "`python -m nas.latency.importers`)")
    prov = meta["provenance"]
    if not isinstance(prov, dict) or any(k not in prov for k in REQUIRED_PROVENANCE):
        raise NasError(f"provenance must give {', '.join(REQUIRED_PROVENANCE)}", where=f"{meta_path}: provenance")
    if meta["spread"] not in ("std", "iqr"):
        raise NasError(f"spread must be 'std' or 'iqr', got {meta['spread']!r}", where=f"{meta_path}: spread")
    if not isinstance(meta["spaces"], list):
        raise NasError("spaces must be a list of space names", where=f"{meta_path}: spaces")
    _check_granularity(meta, meta_path)
    if "reference_ms" in meta:
        ref = meta["reference_ms"]
        if isinstance(ref, bool) or not isinstance(ref, (int, float)) or not math.isfinite(ref) or ref <= 0:
            raise NasError(f"reference_ms must be a positive number, got {ref!r}", where=f"{meta_path}: reference_ms",
                           fix="restore it from the profiling run's metadata or re-profile the table")
    return meta


def _parse_sig_field(name: str, text: str, where: str) -> Any:
    text = text.strip()
    if name == "op":
        if text not in _OPS:
            raise NasError(f"column op: unknown op '{text}'", where=where, fix=f"use one of {', '.join(_OPS)}")
        return text
    if name == "act":
        if not text:
            raise NasError("column act is empty", where=where, fix="write 'none' for no activation")
        return text
    if name == "se":
        if text not in ("0", "1", "True", "False", "true", "false"):
            raise NasError(f"column se: expected 0 or 1, got '{text}'", where=where)
        return text in ("1", "True", "true")
    if name in _INT_FIELDS:
        return _parse_int(text, name, where)
    value = _parse_float(text, name, where)  # expand
    return int(value) if value.is_integer() else value


def _parse_float(text: str, name: str, where: str, *, signed: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise NasError(f"column {name}: '{text}' is not a number", where=where) from None
    if math.isnan(value) or math.isinf(value):
        raise NasError(f"column {name}: {text} is not a finite number", where=where,
                       fix="remove the row or measure it again")
    if value < 0 and not signed:
        raise NasError(f"column {name}: negative value {text}", where=where,
                       fix="latencies must be >= 0 (only boundary rows are signed corrections)")
    return value


def _parse_int(text: str, name: str, where: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise NasError(f"column {name}: '{text}' is not an integer", where=where) from None
    if not value.is_integer() or value < 0:
        raise NasError(f"column {name}: '{text}' is not a non-negative integer", where=where)
    return int(value)


def new_meta(*, device: str, description: str, runtime: str, runtime_version: str, threads: Any, batch: int,
             dtype: str, date: str, protocol: str, spread: str, spaces: Iterable[str], provenance: dict,
             **extra: Any) -> dict:
    """Build a metadata mapping with every required key (keyword-only, so none is forgotten)."""
    meta = {"schema_version": SCHEMA_VERSION, "device": device, "description": description, "runtime": runtime,
            "runtime_version": runtime_version, "threads": threads, "batch": batch, "dtype": dtype, "date": date,
            "protocol": protocol, "spread": spread, "spaces": sorted(set(spaces)), "provenance": provenance}
    meta.update(extra)
    return meta
