"""Every NAS-Bench-Macro network scored by the default proxy, with its latency: the exhaustive proxy x latency
front that search benchmarks compare against (a search's front / this front, in hypervolume).

The 6,561 encodings (8 digits, 3 choices) hold 3,969 distinct networks: an identity layer that keeps the shape
(stride 1, same width) is a no-op, so encodings that differ only in where such identities sit build the same
network. Networks are deduplicated by their computing layers (``nas.layers.plan``, identities dropped); each is
scored once (default proxy, fashion-mnist, seed 0, one thread) and priced by the pinned latency table.

Usage: python -m experiments.search.nasbench_macro_exhaustive [--table x86-2vcpu] [--data fashion-mnist] [--out-dir DIR]
Writes <out-dir>/nasbench_macro_exhaustive.csv (digits, arch, network id, proxy, latency_ms, one row per encoding)
and .json (table name and content hash, proxy, data, seconds, counts); out-dir: experiments/search/results, where
search_front_benchmark reads them. Resumable: networks already in the CSV are not scored again. ~6 min on one
thread.
"""
from __future__ import annotations

import argparse
import itertools
import json
import time

import pandas as pd

from experiments.harness import add_out_dir, write_results

NAME = "nasbench_macro_exhaustive"
SPACE = "nas-bench-macro"


def network_key(space, arch) -> bytes:
    """What the network computes (``nas.layers.network_key``): a digest of its computing layers' signatures."""
    from nas.layers import network_key as key, plan

    return key(plan(arch, space))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", default="x86-2vcpu")
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--proxy", default=None, help="default: nas.proxies.DEFAULT_PROXY")
    add_out_dir(p, "search")
    args = p.parse_args()
    import torch
    from tqdm import tqdm

    from nas.latency import load
    from nas.proxies import DEFAULT_PROXY, Scorer
    from nas.space import load_space

    torch.set_num_threads(1)
    proxy = args.proxy or DEFAULT_PROXY
    space = load_space(SPACE)
    model = load(args.table, dtype="fp32")
    scorer = Scorer(space, [proxy], data=args.data, seed=0)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out_csv = args.out_dir / f"{NAME}.csv"
    done = pd.read_csv(out_csv, dtype={"digits": str}) if out_csv.is_file() else pd.DataFrame()
    scores = dict(zip(done["network"], done["proxy"])) if len(done) else {}
    encodings = ["".join(d) for d in itertools.product("012", repeat=8)]
    networks: dict[tuple, int] = {}
    rows = []
    t0 = time.perf_counter()
    for digits in tqdm(encodings, desc="networks", unit="enc"):
        arch = space.parse(digits)
        net = networks.setdefault(network_key(space, arch), len(networks))
        if net not in scores:
            scores[net] = float(scorer.score(arch)[proxy])
        rows.append({"digits": digits, "arch": space.format(arch), "network": net, "proxy": scores[net],
                     "latency_ms": model.predict(arch, space).latency_ms})
        if len(rows) % 500 == 0:  # resumable: what is scored so far is on disk
            pd.DataFrame(rows).to_csv(out_csv, index=False)
    df = pd.DataFrame(rows)
    df.to_csv(out_csv, index=False)
    meta = {"space": SPACE, "proxy": proxy, "data": args.data, "seed": 0, "table": args.table,
            "table_content_hash": model.table.content_hash(), "encodings": len(df), "networks": len(networks),
            "seconds": round(time.perf_counter() - t0, 1)}
    write_results(args.out_dir, NAME, summary=meta, files=[out_csv], resumed=True)
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
