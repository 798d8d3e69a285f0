"""The one harness every experiment uses: where its results go, and the stamp each results file carries.

* ``--out-dir DIR`` (:func:`add_out_dir`) is always a folder, by default the family's results folder
  ``experiments/<family>/results/``; a script that writes variants of one benchmark also takes ``--name STEM``
  (the results files' stem, default the script's own).
* :func:`write_results` writes ``<name>.csv`` (rows), ``<name>.json`` (the stamp and the summary) and
  ``<name>.md`` (the text, the stamp as its second line). A CSV's stamp is the JSON of the same stem; a script
  that writes other files too (resumable CSVs, per-architecture files) names them in ``files=`` and the JSON
  lists them.
* :func:`stamp`: the command (as run, ``python -m experiments.<family>.<script> ...``), the commit and whether
  ``nas/`` or ``experiments/`` had uncommitted changes, the date, the host (CPU model, ISA, logical CPUs, OS:
  :func:`nas.latency.measure.host.fingerprint`), the load average when the script started and when it wrote,
  the seconds since it started, and the Python, torch, onnxruntime, optuna and numpy versions.

Scripts run from the repository root as modules (``python -m experiments.latency.latency_benchmark``), so they
import this file as ``experiments.harness`` and each other as ``experiments.<family>.<module>``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

EXPERIMENTS = Path(__file__).resolve().parent
ROOT = EXPERIMENTS.parent
WORK = EXPERIMENTS / "work"  # large or temporary files (weights, studies): git-ignored
FAMILIES = ("latency", "proxies", "quant", "search", "export", "end_to_end")
VERSIONS = ("torch", "onnxruntime", "optuna", "numpy")
_STARTED = (time.time(), os.getloadavg() if hasattr(os, "getloadavg") else None)


def results_dir(family: str) -> Path:
    """The family's results folder, ``experiments/<family>/results``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown experiments family {family!r}; one of {', '.join(FAMILIES)}")
    return EXPERIMENTS / family / "results"


def add_out_dir(parser: argparse.ArgumentParser, family: str, name: str | None = None) -> None:
    """``--out-dir DIR`` (a folder, default the family's results folder) and, with ``name``, ``--name STEM``."""
    default = results_dir(family)
    parser.add_argument("--out-dir", type=Path, default=default, metavar="DIR",
                        help=f"folder the results files go to (default {default.relative_to(ROOT)})")
    if name is not None:
        parser.add_argument("--name", default=name, metavar="STEM",
                            help=f"stem of the results files, <out-dir>/<name>.csv/.json/.md (default {name})")


def repo_path(path: Path | str) -> str:
    """A path as results files name it: relative to the repository root where it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def command() -> str:
    """The command line that runs this process, as typed from the repository root."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    args = shlex.join(sys.argv[1:])
    if spec is not None and spec.name:
        return f"python -m {spec.name} {args}".rstrip()
    return f"python {shlex.join(sys.argv)}"


def commit() -> dict:
    """The checked-out commit and whether the code (nas/, experiments/ without results) differs from it."""
    def git(*args: str) -> str:
        res = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        return res.stdout.strip() if res.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return {"commit": "unknown (not a git checkout)", "dirty": None}
    changed = git("status", "--porcelain", "--untracked-files=no", "--", "nas", "experiments",
                  ":(exclude)experiments/*/results")
    return {"commit": head, "dirty": bool(changed)}


def versions() -> dict:
    """Python's and the main libraries' versions (from the package metadata: nothing is imported)."""
    out = {"python": platform.python_version()}
    for name in VERSIONS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _load() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def stamp(threads: int = 1) -> dict:
    """What made a results file: command, commit, date, host, load, versions (``threads``: the onnxruntime
    threads the run measured with, recorded in the host fingerprint)."""
    from nas.latency.measure.host import describe, fingerprint

    host = fingerprint(threads)
    started, load_start = _STARTED
    return {"command": command(), **commit(), "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "host": describe(host), "host_fingerprint": host,
            "load": _load(), "load_at_start": None if load_start is None else [round(x, 2) for x in load_start],
            "seconds": round(time.time() - started, 1), "versions": versions()}


def stamp_line(s: dict) -> str:
    """The stamp as one Markdown line."""
    dirty = " (with uncommitted changes)" if s.get("dirty") else ""
    v = s.get("versions", {})
    libs = ", ".join(f"{k} {v[k]}" for k in VERSIONS if v.get(k))
    load = " ".join(map(str, s.get("load") or [])) or "n/a"
    start = " ".join(map(str, s.get("load_at_start") or [])) or "n/a"
    return (f"`{s['command']}` at {s['commit']}{dirty}, {s['date']}, {s['seconds']:.0f} s; host {s['host']}; "
            f"load average {load} (at start {start}); Python {v.get('python')}, {libs}.")


def _with_stamp(md: str, line: str) -> str:
    """``md`` with the stamp line after its first heading (or first, when it has none)."""
    lines = md.rstrip("\n").split("\n")
    if lines and lines[0].startswith("#"):
        return "\n".join([lines[0], "", line, *lines[1:]]) + "\n"
    return "\n".join([line, "", *lines]) + "\n"


def _relative(path: Path, out: Path) -> str:
    try:
        return str(path.resolve().relative_to(out.resolve()))
    except ValueError:
        return str(path)


def write_results(out_dir: Path | str, name: str, rows=None, summary: dict | None = None, md: str | None = None,
                  files=(), threads: int = 1, resumed: bool = False) -> dict:
    """Write the results of one run, stamped: ``rows`` (a DataFrame or a list of dicts) to ``<name>.csv``,
    ``summary`` (a dict; may be None) with the stamp to ``<name>.json``, ``md`` to ``<name>.md`` with the stamp
    line under its title. ``files``: other files the run wrote (listed in the JSON). ``resumed``: the results
    gather several runs (a resumable benchmark): the JSON keeps the earlier runs' stamps in ``earlier_stamps``.
    Returns the stamp."""
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = stamp(threads)
    written = []
    if rows is not None:
        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
        frame.to_csv(out / f"{name}.csv", index=False)
        written.append(f"{name}.csv")
    if md is not None:
        (out / f"{name}.md").write_text(_with_stamp(md, stamp_line(s)))
        written.append(f"{name}.md")
    doc = {"stamp": s}
    json_path = out / f"{name}.json"
    if resumed and json_path.is_file():
        earlier = json.loads(json_path.read_text())
        earlier = earlier if isinstance(earlier, dict) else {}  # written before this harness: no stamp to keep
        doc["earlier_stamps"] = earlier.get("earlier_stamps", []) + ([earlier["stamp"]] if "stamp" in earlier else [])
    clash = set(summary or {}) & {"stamp", "earlier_stamps", "files"}
    if clash:
        raise ValueError(f"write_results: summary keys {sorted(clash)} are the harness's own")
    doc.update(summary or {})
    doc["files"] = written + [_relative(Path(f), out) for f in files]
    json_path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return s
