"""Does the end-to-end search stop too early? Search 3's study continued from 200 to N trials, its front compared.

The space probe ``probe-v3like`` (a hand-made member of mobilenet-c10) scored above six members of search 3's
proxy-latency front at 1.5-1.7 ms: after 200 trials the front was thin there. This script reads one study (search
3's trials first, then the continuation: ``nas search`` with the same options and ``--trials N`` on a copy of the
study, so its first 200 trials are search 3's) and, after the first 200, 400, ... trials, gives

- the proxy-latency front's size and hypervolume (proxy above the 200-trial front's lowest score, latency up to its
  slowest member, the same box for every row: a larger value is a front that got better);
- per latency band (log-spaced bands over that range) the best proxy score on the front;
- whether the probe (its proxy and predicted latency, ``--probe-proxy`` / ``--probe-ms``) is dominated.

    python -m experiments.end_to_end.front_coverage --storage sqlite:///experiments/work/end_to_end/coverage.db \
        --study s3-continued

Writes experiments/end_to_end/results/front_coverage.{csv,json,md}.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from experiments.harness import add_out_dir, write_results

PROXY, LATENCY = "proxy.qnaswot", "latency_ms.x86-2vcpu-here"
BANDS = 6


def hypervolume_2d(proxy: np.ndarray, latency: np.ndarray, ref_proxy: float, ref_latency: float) -> float:
    """Area dominated by the points (proxy up, latency down) inside the box [ref_proxy, .] x [., ref_latency]."""
    pts = sorted((l, p) for p, l in zip(proxy, latency) if p > ref_proxy and l < ref_latency)
    area, best = 0.0, ref_proxy
    for i, (l, p) in enumerate(pts):  # ascending latency: each point adds its gain over the best faster one
        best = max(best, p)
        nxt = pts[i + 1][0] if i + 1 < len(pts) else ref_latency
        area += (best - ref_proxy) * (nxt - l)
    return area


def front_2d(df: pd.DataFrame) -> pd.DataFrame:
    from nas.search.front import pareto_mask

    pool = df[df["feasible"] & ~df["duplicate"]]
    return pool[pareto_mask(pool[[PROXY, LATENCY]].to_numpy(float), ["maximize", "minimize"])].sort_values(LATENCY)


def coverage(df: pd.DataFrame, steps: list[int], probe: tuple[float, float]) -> pd.DataFrame:
    first = front_2d(df[df["trial"] < steps[0]])
    ref_proxy, ref_latency = first[PROXY].min(), first[LATENCY].max()
    edges = np.geomspace(first[LATENCY].min(), ref_latency, BANDS + 1)
    rows = []
    for n in steps:
        f = front_2d(df[df["trial"] < n])
        row = {"trials": n, "front_size": len(f),
               "hypervolume": hypervolume_2d(f[PROXY].to_numpy(), f[LATENCY].to_numpy(), ref_proxy, ref_latency),
               "probe_dominated": bool(((f[PROXY] >= probe[0]) & (f[LATENCY] <= probe[1])).any())}
        for lo, hi in zip(edges[:-1], edges[1:]):
            band = f[(f[LATENCY] >= lo) & (f[LATENCY] < hi)]
            row[f"best_proxy_{lo:.2f}-{hi:.2f}ms"] = band[PROXY].max() if len(band) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    from nas.search.front import load_trials

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--storage", required=True)
    ap.add_argument("--study", required=True)
    ap.add_argument("--step", type=int, default=200)
    ap.add_argument("--probe-proxy", type=float, default=206.425, help="the probe's qnaswot (digits, seed 0)")
    ap.add_argument("--probe-ms", type=float, default=1.5676, help="the probe's predicted latency")
    add_out_dir(ap, "end_to_end")
    args = ap.parse_args(argv)
    _, _, df = load_trials(args.storage, args.study)
    steps = list(range(args.step, int(df["trial"].max()) + 2, args.step))
    table = coverage(df, steps, (args.probe_proxy, args.probe_ms))
    md = ("# Front coverage: search 3 continued\n\n"
          f"Study `{args.study}` ({len(df)} finished trials; the first 200 are search 3's). Hypervolume of the "
          "proxy-latency front in the 200-trial front's box; best proxy per latency band; is the probe "
          f"(qnaswot {args.probe_proxy}, {args.probe_ms} ms predicted) dominated.\n\n"
          f"```\n{table.round(3).to_string(index=False)}\n```\n")
    write_results(args.out_dir, "front_coverage", rows=table, md=md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
