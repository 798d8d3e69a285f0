"""Does the search beat random at equal budget? Hypervolume of each sampler's front over the best possible front.

Part A, NAS-Bench-Macro (all 3,969 distinct networks scored once by ``experiments.search.nasbench_macro_exhaustive``:
default proxy naswot on fashion-mnist, latency from the pinned x86-2vcpu table at fp32). A search reads each
network's proxy score from that file instead of recomputing it (same values, deterministic), so many seeds and
budgets are cheap. For each sampler (front = ``nas.search.sampler.FrontSampler``, the default; nsga2, tpe,
random) and budget (50, 200, 1,000 proxy evaluations = distinct networks scored; a baseline's trials that repeat a
network cost no evaluation and run on until the budget is spent, up to 4x its trials) and seed: hypervolume
(proxy up x latency down, reference point = the worst proxy and the worst latency over all networks) of the
search's feasible front, over the exhaustive front's. The proxy-space ratio the issue's 0.99 target is set in.

Part B, fbnet-c100 x raspi4 (no exhaustive front): the same samplers with the real default proxy (naswot,
fashion-mnist) at ``--fbnet-budget`` evaluations, hypervolume over that of the union of every run's front;
one Evaluator per space is shared between runs, so a network is scored once for all of them. Part B is
resumable (it takes over an hour): each finished run's feasible points and every proxy score so far are kept in
``experiments/work/search_front/<name>.runs/`` (keyed by budget and the table's content hash), and a restart skips
the finished runs. Two processes may share ``--name`` with different ``--samplers`` (the scores file is replaced
atomically); a last run with every sampler then only reads the finished runs and writes the results.

Usage: python -m experiments.search.search_front_benchmark [--seeds 5] [--budgets 50 200 1000] [--part A|B|AB]
       [--out-dir DIR] [--name STEM]
Writes <out-dir>/<name>.{csv,md,json} (out-dir: experiments/search/results, name: search_front_benchmark; the
tables' names and content hashes are pinned there: a run refuses a table whose hash differs from the exhaustive
file's, experiments/search/results/nasbench_macro_exhaustive.*).
"""
from __future__ import annotations

import argparse
import json
import os
import threading
import time

import numpy as np
import pandas as pd

from experiments.harness import WORK, add_out_dir, results_dir, write_results

EXHAUSTIVE = results_dir("search") / "nasbench_macro_exhaustive"  # .csv and .json
SAMPLERS = ("front", "nsga2", "tpe", "random")


class LookupScorer:
    """A Scorer that reads each network's score from the exhaustive file (for Part A)."""

    def __init__(self, space, scores: dict[str, float], proxy: str, data: str, seed: int = 0):
        self.space, self.scores, self.proxies, self.data, self.seed = space, scores, [proxy], data, seed
        self.batch_size, self.train_options = None, {}  # no network is run: the study's record says so

    def score(self, arch) -> dict[str, float]:
        return {self.proxies[0]: self.scores[self.space.format(arch)]}


def run_search(evaluator, sampler: str, seed: int, budget: int) -> tuple:
    """One in-memory search until ``budget`` distinct networks are scored (at most 4 x budget trials): its
    trials frame, seconds, networks scored, trials."""
    from nas.search import create_search
    from nas.search.front import trials_frame
    from nas.search.sampler_registry import make_sampler

    space = evaluator.space
    run = create_search(space, latency=list(evaluator.latency.values()), scorer=evaluator.scorer,
                        sampler=make_sampler(sampler, seed=seed, trials=budget), study="bench",
                        evaluator=evaluator)
    networks: set = set()
    stop = threading.Event()

    def count(frozen) -> None:
        if "arch" in frozen.user_attrs:
            networks.add(evaluator.network(space.parse(frozen.user_attrs["arch"])))
        if len(networks) >= budget:
            stop.set()

    t0 = time.perf_counter()
    run.optimize(4 * budget, stop=stop, callback=count)
    df = trials_frame(run.study)
    return df, time.perf_counter() - t0, len(networks), len(df)


def hv(df_or_values, directions, ref) -> float:
    from nas.search.front import pareto_mask
    from nas.search.hypervolume import hypervolume

    v = np.asarray(df_or_values, dtype=float)
    return hypervolume(v[pareto_mask(v, directions)], directions, ref)


def part_a(args) -> tuple[list[dict], dict]:
    """NAS-Bench-Macro against its exhaustive proxy front."""
    import optuna

    from nas.latency import load
    from nas.search.evaluator import Evaluator
    from nas.space import load_space

    meta = json.loads(EXHAUSTIVE.with_suffix(".json").read_text())
    table = load(meta["table"], dtype="fp32")
    if table.table.content_hash() != meta["table_content_hash"]:
        raise SystemExit(f"table {meta['table']} has hash {table.table.content_hash()}, the exhaustive file was "
                         f"priced with {meta['table_content_hash']}: rerun "
                         "python -m experiments.search.nasbench_macro_exhaustive")
    exhaustive = pd.read_csv(EXHAUSTIVE.with_suffix(".csv"), dtype={"digits": str})
    space = load_space("nas-bench-macro")
    scores = dict(zip(exhaustive["arch"], exhaustive["proxy"]))
    dirs = ["maximize", "minimize"]
    allv = exhaustive[["proxy", "latency_ms"]].to_numpy()
    ref = np.array([allv[:, 0].min(), allv[:, 1].max()])
    best_hv = hv(allv, dirs, ref)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for budget in args.budgets:
        for sampler in args.samplers:
            for seed in range(args.seeds):
                scorer = LookupScorer(space, scores, meta["proxy"], meta["data"], seed)
                evaluator = Evaluator(space, {table.device: table}, scorer)
                df, seconds, networks, trials = run_search(evaluator, sampler, seed, budget)
                ok = df[df["feasible"]]
                ratio = hv(ok[[f"proxy.{meta['proxy']}", f"latency_ms.{table.device}"]], dirs, ref) / best_hv
                rows.append({"part": "A", "space": "nas-bench-macro", "budget": budget, "sampler": sampler,
                             "seed": seed, "hv_ratio": round(ratio, 4), "networks": networks, "trials": trials,
                             "seconds": round(seconds, 1)})
                print(rows[-1], flush=True)
    pins = {"nas-bench-macro": {"table": meta["table"], "dtype": "fp32", "content_hash": meta["table_content_hash"],
                                "proxy": meta["proxy"], "data": meta["data"], "exhaustive_hv": best_hv,
                                "reference_point": ref.tolist()}}
    return rows, pins


def part_b(args) -> tuple[list[dict], dict]:
    """fbnet-c100 on raspi4 with the real default proxy, against the union of every run's front."""
    import optuna

    from nas.latency import load
    from nas.proxies import DEFAULT_PROXY, Scorer
    from nas.lru import LRU
    from nas.search.evaluator import Evaluator
    from nas.space import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space, table = load_space("fbnet-c100"), load("raspi4")
    scorer = Scorer(space, [DEFAULT_PROXY], data="fashion-mnist", seed=0)
    scorer._cache = LRU(1_000_000)  # every score of the runs is saved for resuming, not only the scorer's last 4,096
    evaluator = Evaluator(space, {table.device: table}, scorer)
    cols = [f"proxy.{DEFAULT_PROXY}", f"latency_ms.{table.device}"]
    # resumable: each finished run's feasible points, and every proxy score so far, are kept beside the results
    done_dir = WORK / "search_front" / f"{args.name}.runs"
    done_dir.mkdir(parents=True, exist_ok=True)
    scores_path = done_dir / f"scores-{table.table.content_hash()}.json"
    if scores_path.is_file():
        scorer._cache.update(json.loads(scores_path.read_text()))
    runs = []
    for sampler in args.samplers:
        for seed in range(args.fbnet_seeds):
            path = done_dir / f"{sampler}-{seed}-{args.fbnet_budget}-{table.table.content_hash()}.npz"
            if path.is_file():
                z = np.load(path)
                runs.append((sampler, seed, z["points"], float(z["seconds"]), int(z["networks"]), int(z["trials"])))
                continue
            df, seconds, networks, trials = run_search(evaluator, sampler, seed, args.fbnet_budget)
            points = df[df["feasible"]][cols].to_numpy(dtype=float)
            np.savez(path, points=points, seconds=seconds, networks=networks, trials=trials)
            tmp = scores_path.with_suffix(f".{os.getpid()}.tmp")  # atomic: runs of other samplers may share it
            tmp.write_text(json.dumps(scorer._cache))
            os.replace(tmp, scores_path)
            runs.append((sampler, seed, points, seconds, networks, trials))
            print(sampler, seed, round(seconds, 1), flush=True)
    dirs = ["maximize", "minimize"]
    every = np.vstack([r[2] for r in runs])
    ref = np.array([every[:, 0].min(), every[:, 1].max()])
    union = hv(every, dirs, ref)
    rows = [{"part": "B", "space": "fbnet-c100", "budget": args.fbnet_budget, "sampler": sampler, "seed": seed,
             "hv_ratio": round(hv(v, dirs, ref) / union, 4), "networks": networks, "trials": trials,
             "seconds": round(seconds, 1)} for sampler, seed, v, seconds, networks, trials in runs]
    pins = {"fbnet-c100": {"table": table.device, "content_hash": table.table.content_hash(), "proxy": DEFAULT_PROXY,
                           "data": "fashion-mnist", "union_hv": union, "reference_point": ref.tolist()}}
    return rows, pins


def summary(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    g = df.groupby(["part", "space", "budget", "sampler"], sort=False)
    return g.agg(hv_median=("hv_ratio", "median"), hv_min=("hv_ratio", "min"), hv_max=("hv_ratio", "max"),
                 seeds=("seed", "count"), networks=("networks", "median"), trials=("trials", "median"),
                 seconds=("seconds", "median")).reset_index()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--budgets", type=int, nargs="+", default=[50, 200, 1000])
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS))
    p.add_argument("--part", default="AB")
    p.add_argument("--fbnet-budget", type=int, default=1000)
    p.add_argument("--fbnet-seeds", type=int, default=3)
    add_out_dir(p, "search", name="search_front_benchmark")
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    rows, pins = [], {}
    t0 = time.time()
    if "A" in args.part:
        r, pin = part_a(args)
        rows += r
        pins.update(pin)
    if "B" in args.part:
        r, pin = part_b(args)
        rows += r
        pins.update(pin)
    table = summary(rows)
    md = ["# Search front benchmark\n",
          f"{round((time.time() - t0) / 60, 1)} min.\n",
          ("HV ratio: hypervolume of the search's feasible front (proxy up x latency down) over the reference front's "
           "(A: every network; B: the union of every run's front). Budget: distinct networks scored.\n"),
          table.to_markdown(index=False), ""]
    write_results(args.out_dir, args.name, rows=rows, md="\n".join(md), summary={"pins": pins, "settings": vars(args)})
    print(table.to_markdown(index=False))


if __name__ == "__main__":
    main()
