"""Mixed-precision table sums vs whole networks: with and without the precision-boundary term.

50 random mobilenet-c10 architectures (seed 7), each at its own bits (every block its own activation and
w4/w8/w32 x a8/a32 pair), exported and deployed by nas.nn.quantize like `nas export`, measured end to end in
one session with the profiler's protocol on the table's reference scale (`nas.latency.measure.validate
.measure_networks`). Each is predicted by the shipped table twice: layer rows only, and layer rows plus one
boundary row per layer-to-layer precision change (`nas lut profile --boundaries`). Metrics: share within
±10 %, Spearman, MAPE, mean predicted/measured.

Run it once, and again in a later session (`--session later`): each run appends its per-architecture CSV and
its rows to the summary, so the two sessions stand side by side. The table is pinned by content hash in the
results (a re-profiled table shows as a different hash).

Usage: python -m experiments.latency.latency_boundary_benchmark [--n 50] [--seed 7] [--session first] [--out-dir DIR]
Writes <out-dir>/latency_boundary_<session>.csv and latency_boundary_benchmark.{json,md} (out-dir:
experiments/latency/results; the JSON keeps every session's run and stamp).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd

from experiments.harness import add_out_dir, write_results
from nas.latency import read_table
from nas.latency.measure.validate import measure_networks
from nas.latency.metrics import metrics
from nas.latency.predict import TableLatencyModel
from nas.latency.table import SHIPPED_DIR
from nas.space import load_space

SPACE = "mobilenet-c10"
NAME = "latency_boundary_benchmark"


def run(table_path: Path, n: int, seed: int, session: str, out_dir: Path) -> dict:
    table = read_table(table_path)
    space = load_space(SPACE)
    archs = space.sample_many(n, seed=seed)
    with_b, without = TableLatencyModel(table), TableLatencyModel(table, boundaries=False)
    if SPACE not in with_b.boundaries:
        raise SystemExit(f"{table_path} has no boundary rows for {SPACE}: profile them with "
                         f"`nas lut profile --space {SPACE} --device-name {table.device} --dtype arch --all --boundaries`")
    t0 = time.perf_counter()
    measured = measure_networks(archs, space, "arch", threads=int(table.meta["threads"]),
                                stat=str(table.meta.get("stat", "median")), reference_ms=table.meta["reference_ms"])
    seconds = time.perf_counter() - t0
    rows = []
    for arch, (ms, iqr) in zip(archs, measured.values):
        p_with, p_without = with_b.predict(arch, space), without.predict(arch, space)
        rows.append({"arch": space.format(arch), "measured_ms": ms, "iqr_ms": iqr, "table_ms": p_without.latency_ms,
                     "table_boundaries_ms": p_with.latency_ms,
                     "boundaries": sum(1 for r in p_with.rows if r.key.startswith("boundary-")),
                     "boundary_ms": p_with.latency_ms - p_without.latency_ms})
    df = pd.DataFrame(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(out_dir / f"latency_boundary_{session}.csv", index=False)
    return {"session": session, "date": time.strftime("%Y-%m-%d %H:%M"), "n": n, "seed": seed,
            "table": table_path.name, "content_hash": table.content_hash(), "seconds": round(seconds, 1),
            "load_1min": round(os.getloadavg()[0], 2), "slowdown": round(measured.slowdown, 3),
            "without": metrics(df.table_ms, df.measured_ms),
            "with": metrics(df.table_boundaries_ms, df.measured_ms),
            "mean_boundary_share_pct": float((df.boundary_ms / df.table_boundaries_ms).mean() * 100)}


def write_summary(runs: list[dict], out_dir: Path) -> None:
    lines = ["# Precision boundaries: table sum vs whole mixed-precision networks (mobilenet-c10, x86-2vcpu, "
             "1 thread)", "", "| session | date | table hash | predictor | within ±10 % | Spearman | MAPE % | mean pred/measured |"
             " machine |", "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        for name, key in (("layer rows only", "without"), ("layers + boundaries", "with")):
            m = r[key]
            lines.append(f"| {r['session']} | {r['date']} | {r['content_hash']} | {name} | {m['within10_pct']:.0f} % | "
                         f"{m['spearman']:.3f} | {m['mape_pct']:.1f} | {m['mean_ratio']:.3f} | load {r['load_1min']}, "
                         f"reference kernel at {r['slowdown']:.2f}x its profiling-time |")
    lines += ["", f"{runs[-1]['n']} architectures (seed {runs[-1]['seed']}) at their own bits, measured end to end "
              "in one session each (every call paired with the reference kernel, values on the table's "
              "reference scale). Boundary rows add on average "
              + ", ".join(f"{r['mean_boundary_share_pct']:.1f} % ({r['session']})" for r in runs)
              + " of the prediction (the stamp is the last session's; the JSON keeps the earlier ones)."]
    write_results(out_dir, NAME, summary={"runs": runs}, md="\n".join(lines), resumed=True,
                  files=[out_dir / f"latency_boundary_{r['session']}.csv" for r in runs])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", default=str(SHIPPED_DIR / "x86-2vcpu.csv"))
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--session", default="first", help="name of this measurement session (a later run: 'later')")
    add_out_dir(p, "latency")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    summary_path = args.out_dir / f"{NAME}.json"
    doc = json.loads(summary_path.read_text()) if summary_path.is_file() else {"runs": []}
    runs = doc["runs"] if isinstance(doc, dict) else doc  # a list: written before the harness (2026-12-06)
    runs = [r for r in runs if r["session"] != args.session]
    runs.append(run(Path(args.table), args.n, args.seed, args.session, args.out_dir))
    write_summary(runs, args.out_dir)
    print((args.out_dir / f"{NAME}.md").read_text())


if __name__ == "__main__":
    main()
