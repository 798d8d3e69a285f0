"""How much does this machine's speed drift between measurement sessions, raw and with the paired reference?

The same N whole networks (mobilenet-c10, random, seed 3) are measured in S sessions one after the other. Each
session times every network with the profiler's paired protocol (``measure_paired``: each timed call right after
a timed call of the reference kernel), keeping both the plain times and the ratios. For each session after the
first, per network: (value in this session) / (value in session 0); the table reports the mean (a common
shift of the whole machine) and the standard deviation over networks (what no single constant can correct) for
plain milliseconds (median of the network's own calls) and for paired ratios (median ratio).

Usage: python -m experiments.latency.latency_drift_check [--n 40] [--sessions 4] [--dtype int8] [--out-dir DIR]
Writes <out-dir>/latency_drift_check.{csv,json,md} (out-dir: experiments/latency/results).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.harness import add_out_dir, write_results
from nas.latency.measure.timing import Timer, build_onnx, measure_paired, reference_timer
from nas.latency.signatures import deploy
from nas.layers import plan
from nas.nn.build import build_model
from nas.space import load_space


class Recording(Timer):
    """A Timer that also keeps its own plain per-call times."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.log: list[float] = []

    def once(self) -> float:
        t = super().once()
        self.log.append(t)
        return t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--sessions", type=int, default=4)
    p.add_argument("--dtype", default="int8", choices=("fp32", "int8"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=8)
    add_out_dir(p, "latency")
    args = p.parse_args()

    import torch

    torch.set_num_threads(1)
    space = load_space("mobilenet-c10")
    archs = space.sample_many(args.n, seed=3)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        timers = []
        for i, a in enumerate(archs):
            model = build_model(a, space, seed=0)
            shape = (1, *model.input_shape)
            path = build_onnx(model, shape, [deploy(s, args.dtype) for s in plan(a, space)], work, f"n{i}")
            timers.append(Recording(path, shape, 1))
        reference = reference_timer(work, 1)
        for s in range(args.sessions):
            for t in timers:
                t.log.clear()
            t0 = time.perf_counter()
            paired = measure_paired(timers, reference, warmup=3, repeats=args.repeats, rounds=args.rounds)
            ref_ms = float(np.median(paired.reference))
            for i, t in enumerate(timers):
                rows.append({"session": s, "net": i, "plain_ms": float(np.median(t.log)),  # timed calls only
                             "ratio": float(np.median(paired.ratios[i])), "reference_ms": ref_ms})
            print(f"session {s}: {time.perf_counter() - t0:.1f} s, reference kernel {ref_ms * 1000:.0f} us", flush=True)
    df = pd.DataFrame(rows)
    base = df[df.session == 0].set_index("net")
    lines = ["| session | reference kernel µs | plain ms: mean shift | plain ms: sd over networks | "
             "paired ratio: mean shift | paired ratio: sd over networks |", "|---|---|---|---|---|---|"]
    for s in range(1, args.sessions):
        cur = df[df.session == s].set_index("net")
        plain = cur.plain_ms / base.plain_ms
        ratio = cur.ratio / base.ratio
        lines.append(f"| {s} vs 0 | {cur.reference_ms.iloc[0] * 1000:.0f} (session 0: "
                     f"{base.reference_ms.iloc[0] * 1000:.0f}) | {plain.mean():.3f} | {plain.std():.3f} | "
                     f"{ratio.mean():.3f} | {ratio.std():.3f} |")
    md = "\n".join(lines)
    print(md)
    write_results(args.out_dir, "latency_drift_check", rows=df, md=(
        f"# Session-to-session drift ({args.n} mobilenet-c10 networks, {args.dtype}, 1 thread)\n\n{md}\n"))


if __name__ == "__main__":
    main()
