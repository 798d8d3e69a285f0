"""Memory of one search worker: resident memory (VmRSS) every 50 trials of a 1,500-trial search.

The README main job's settings: mobilenet-c10 priced on x86-2vcpu, objectives proxy, latency, size, the default
proxy and the default sampler (``front``), a local SQLite study (in a temporary folder), one worker, one torch
thread. The search runs in this process the way ``nas search --workers 1`` runs it (``search_from_config`` and
``Search.optimize``, with the CLI's progress callback, which reads the study's status at most once a second);
after every ``--every`` finished trials the callback reads VmRSS from /proc/self/status (and, to tell live data
from memory the allocator keeps, malloc's bytes in use and the number of objects Python's collector tracks) and
VmHWM, the peak so far. The callback runs before the search hands the trial's freed memory back to the system
(``nas.memory.release_free_memory``, after every trial), so a sample includes what its trial left behind.

Growth is measured from the first sample (after ``--every`` trials: imports, tables, the proxy's data and the
first networks are loaded by then) to the last; the target (issue 28, item 15) is <= 50 MB over 1,500 trials.
``--trace`` also runs tracemalloc and prints the 15 source lines whose Python allocations grew most between the
first and the last sample (slower; for finding a leak, not for the figure).

Usage: python -m experiments.search.search_memory [--trials 1500] [--every 50] [--trace] [--out-dir DIR] [--name STEM]
Writes <out-dir>/<name>.{csv,json} (out-dir: experiments/search/results, name: search_memory; stamped with command,
commit, date, host and load).
"""
from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

from experiments.harness import add_out_dir, write_results

TARGET_MB = 50.0  # growth allowed over 1,500 trials


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory (VmRSS), or its peak so far (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024.0
    import resource  # no /proc: the peak is the best available

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def heap_mb() -> float | None:
    """Bytes malloc has handed out and not had back (glibc ``mallinfo2``: in-use chunks plus mmapped blocks), MB:
    live data outside Python's small-object arenas (torch, numpy, large Python objects). None off glibc."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                    "fsmblks", "uordblks", "fordblks", "keepcost")]

    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = MallInfo2
    info = fn()
    return round((info.uordblks + info.hblkhd) / 2 ** 20, 1)


def run(args, folder: Path) -> tuple[list[dict], list[str]]:
    """Run the search; one row per sample: trials finished, seconds, VmRSS."""
    import optuna
    import torch

    from nas.cli.search import _Progress
    from nas.search import SearchConfig
    from nas.search.run import search_from_config

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    cfg = SearchConfig(space=args.space, devices=[args.device], trials=args.trials, proxy=args.proxy,
                       objectives=args.objectives.split(","), storage=f"sqlite:///{folder}/study.db",
                       study="memory").resolved()
    if args.trace:
        import tracemalloc

        tracemalloc.start(1)
    search = search_from_config(cfg)
    bar = _Progress(search, cfg, enabled=False)  # what `nas search` calls after each trial
    rows: list[dict] = []
    snapshots: list = []
    start, done = time.perf_counter(), [0]

    def callback(frozen) -> None:
        bar(frozen)
        done[0] += 1
        if done[0] % args.every == 0 or done[0] == args.trials:
            gc.collect()
            rows.append({"trials": done[0], "seconds": round(time.perf_counter() - start, 1),
                         "rss_mb": round(rss_mb(), 1), "hwm_mb": round(rss_mb("VmHWM"), 1), "malloc_mb": heap_mb(), "gc_objects": len(gc.get_objects())})
            if args.trace:
                import tracemalloc

                snapshots[1:] = [tracemalloc.take_snapshot()]
                if len(snapshots) == 1:
                    snapshots.append(snapshots[0])
            if not args.quiet:
                r = rows[-1]
                print(f"{r['trials']:>6} trials {r['seconds']:>8.1f} s  {r['rss_mb']:>8.1f} MB", flush=True)

    search.optimize(args.trials, callback=callback)
    top = []
    if args.trace and len(snapshots) == 2:
        stats = snapshots[1].compare_to(snapshots[0], "lineno")
        top = [f"{s.size_diff / 1e6:+.2f} MB {s.count_diff:+d} blocks  {s.traceback}" for s in stats[:15]]
    return rows, top


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=1500, help="trials of the search (default 1500)")
    p.add_argument("--every", type=int, default=50, help="trials between memory samples (default 50)")
    p.add_argument("--space", default="mobilenet-c10", help="search space (default mobilenet-c10)")
    p.add_argument("--device", default="x86-2vcpu", help="latency table (default x86-2vcpu)")
    p.add_argument("--objectives", default="proxy,latency,size", help="objectives (default proxy,latency,size)")
    p.add_argument("--proxy", default=None, help="proxy (default: the space's default, qnaswot for mobilenet-c10)")
    p.add_argument("--trace", action="store_true", help="also trace Python allocations (default off; slower)")
    p.add_argument("--quiet", action="store_true", help="print only the summary (default: a line per sample)")
    add_out_dir(p, "search", name="search_memory")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="nas-memory-") as folder:
        rows, top = run(args, Path(folder))
    first, last = rows[0], rows[-1]
    growth = last["rss_mb"] - first["rss_mb"]
    span = last["trials"] - first["trials"]
    per_1500 = growth / span * 1500 if span else float("nan")
    # the steady state, after the caches have filled: the last 1,000 trials (None on a shorter run)
    before = next((r for r in rows if r["trials"] == last["trials"] - 1000), None)
    late = round(last["rss_mb"] - before["rss_mb"], 1) if before else None
    malloc = round(last["malloc_mb"] - first["malloc_mb"], 1) if last["malloc_mb"] is not None else None
    summary = {"space": args.space, "device": args.device, "objectives": args.objectives,
               "proxy": args.proxy or "default",
               "sampler": "front", "storage": "sqlite (temporary folder)", "trials": last["trials"],
               "seconds": last["seconds"], "rss_first_mb": first["rss_mb"], "rss_last_mb": last["rss_mb"],
               "rss_peak_mb": max(r["rss_mb"] for r in rows), "hwm_first_mb": first["hwm_mb"],
               "hwm_last_mb": last["hwm_mb"],
               "growth_mb": round(growth, 1), "growth_from_trial": first["trials"],
               "growth_per_1500_trials_mb": round(per_1500, 1), "target_mb": TARGET_MB,
               "growth_last_1000_trials_mb": late, "malloc_growth_mb": malloc,
               "meets_target": bool(growth <= TARGET_MB * span / 1500) if span else None,
               "samples": rows, "trace_top": top}
    info = write_results(args.out_dir, args.name, rows=rows, summary=summary)
    print(f"\n{'trials':>6} {'seconds':>9} {'VmRSS MB':>9} {'malloc MB':>10} {'gc objects':>11}")
    for r in rows:
        print(f"{r['trials']:>6} {r['seconds']:>9.1f} {r['rss_mb']:>9.1f} {r['malloc_mb'] or float('nan'):>10.1f} "
              f"{r['gc_objects']:>11}")
    print(f"\ngrowth {growth:+.1f} MB from trial {first['trials']} to {last['trials']} "
          f"({per_1500:+.1f} MB per 1,500 trials; target <= {TARGET_MB:.0f} MB); peak {summary['rss_peak_mb']} MB; "
          f"malloc in use {malloc:+.1f} MB" + (f"; last 1,000 trials {late:+.1f} MB" if late is not None else ""))
    for line in top:
        print(line)
    print(f"wrote {args.out_dir / args.name}.csv and .json  ({info['commit']}, load {info['load']})")


if __name__ == "__main__":
    main()
