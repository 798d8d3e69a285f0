"""Time naswot (the default proxy) at batch 16 vs 32 and torch threads 1 vs 2 on the 32-px spaces.

For each space, N architectures (nas-bench-macro: the first N dev rows; mobilenet-c10: space.sample_many(N,
seed=0)); for every architecture the four configurations run back to back in a rotating order (interleaved,
so machine-load drift hits all of them alike), each in its own Scorer (model build + fake quantization +
forward + kernel, i.e. what the search pays per new candidate). Reports median / p90 ms per architecture,
architectures per second (1 / median) and the load average before and after. Writes
<out-dir>/proxies_naswot_timing.{md,csv,json} (out-dir: experiments/proxies/results).

    python -m experiments.proxies.proxies_naswot_timing --n 60
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.harness import ROOT, add_out_dir, write_results

DEV = ROOT.parent / "shared" / "data" / "dev" / "nas_bench_macro_dev.csv"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--spaces", default="nas-bench-macro,mobilenet-c10")
    ap.add_argument("--batches", default="16,32")
    ap.add_argument("--threads", default="1,2")
    add_out_dir(ap, "proxies")
    args = ap.parse_args(argv)
    import torch

    from nas.proxies import Scorer
    from nas.space import load_space

    configs = [(b, t) for b in map(int, args.batches.split(",")) for t in map(int, args.threads.split(","))]
    rows = []
    for name in args.spaces.split(","):
        space = load_space(name)
        if name == "nas-bench-macro":
            archs = list(pd.read_csv(DEV, dtype={"arch": str})["arch"].head(args.n))
        else:
            archs = [space.format(a) for a in space.sample_many(args.n, seed=0)]
        scorers = {c: Scorer(space, ["naswot"], seed=0, batch_size=c[0]) for c in configs}
        for c, s in scorers.items():  # load the input batch once, outside the timing
            s.inputs.get("data", c[0])
        times = {c: [] for c in configs}
        load_before = loadavg()
        for i, a in enumerate(archs):
            for c in configs[i % len(configs):] + configs[: i % len(configs)]:
                torch.set_num_threads(c[1])
                t0 = time.perf_counter()
                scorers[c].score(a)
                times[c].append(time.perf_counter() - t0)
        load_after = loadavg()
        for (b, t), v in times.items():
            med = float(np.median(v))
            rows.append({"space": name, "batch": b, "threads": t, "n": len(v), "median_ms": med * 1000,
                         "p90_ms": float(np.percentile(v, 90)) * 1000, "archs_per_s": 1 / med,
                         "loadavg_before": load_before, "loadavg_after": load_after})
        print(pd.DataFrame(rows).tail(len(configs)).to_string(index=False), file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    fmt = table.to_string(index=False, float_format=lambda v: f"{v:.1f}")
    print(fmt)
    write_results(args.out_dir, "proxies_naswot_timing", rows=table, md=(
        "# naswot cost per architecture: batch 16 vs 32, torch threads 1 vs 2 (32-px spaces)\n\n"
        "One process; per architecture the configurations run interleaved (rotating order), each in its own Scorer\n"
        "(build + fake quantization + forward + kernel). The load average (1/5/15 min) before and after each space\n"
        "is in the table; a load above the logical CPUs (in the stamp) means other work competed for them.\n\n"
        f"```\n{fmt}\n```\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
