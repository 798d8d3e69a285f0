"""`nas search` and `nas pareto`: thin wrappers over nas.search and nas.pareto."""
from __future__ import annotations

import argparse

from nas.storage import DEFAULT_STORAGE


def cmd_search(args: argparse.Namespace) -> None:
    from nas.search import SearchConfig, search

    cfg = SearchConfig(
        space=args.space, devices=args.device, trials=args.trials, latency_budget_ms=args.latency_budget,
        size_budget_mb=args.size_budget, objectives=[o.strip() for o in args.objectives.split(",") if o.strip()],
        sampler=args.sampler, proxy=args.proxy, data=args.data, seed=args.seed, storage=args.storage,
        study=args.study, workers=args.workers, allow_estimate=args.allow_estimate, latency_dtype=args.latency_dtype,
        threads=args.threads,
    ).resolved()
    summary = search(cfg, progress=not args.quiet)
    print(f"study '{summary.study}' in {summary.storage}: {summary.trials} trials, {summary.feasible} feasible, "
          f"Pareto front {summary.front_size} ({summary.seconds:.1f} s this run)")
    print(f"next: nas pareto --storage {summary.storage} --study {summary.study} -o pareto-{summary.study}")


def cmd_pareto(args: argparse.Namespace) -> None:
    from nas.pareto import write_report

    paths = write_report(args.storage, args.study, args.output)
    for name, path in paths.items():
        print(f"wrote {path}")


def register(sub) -> None:
    p = sub.add_parser("search", help="multi-objective architecture search (Optuna study)",
                       description="Search a space for architectures that are accurate (proxy) and fast on the "
                                   "target device(s). Re-running the same command resumes the study.")
    p.add_argument("--space", required=True, help="search space name or YAML path")
    p.add_argument("--device", action="append", required=True,
                   help="latency table (device name or path); repeat for several devices")
    p.add_argument("--trials", type=int, default=100, help="total finished trials the study should hold")
    p.add_argument("--latency-budget", type=float, help="ms; on every device")
    p.add_argument("--size-budget", type=float, help="MB at the architecture's bit-widths")
    p.add_argument("--objectives", default="proxy,latency", help="comma-separated: proxy, latency, size, macs")
    p.add_argument("--sampler", default="nsga2", help="nsga2 (default), tpe or random")
    p.add_argument("--proxy", help="accuracy proxy (default: the benchmark-chosen one; see `nas score --help`)")
    p.add_argument("--data", default="digits", help="proxy input data: fashion-mnist, digits or noise")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--storage", help=f"Optuna storage URL (default {DEFAULT_STORAGE}; with --workers > 1: "
                                     "journal:///nas-studies.journal); postgresql://... for many machines")
    p.add_argument("--study", help="study name (default: <space>-<devices>)")
    p.add_argument("--workers", type=int, default=1, help="processes working on the study")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker for the proxy (default 1)")
    p.add_argument("--allow-estimate", action="store_true",
                   help="fill latency-table gaps with the documented estimator (flagged per trial)")
    p.add_argument("--latency-dtype", choices=("arch", "fp32", "int8"),
                   help="deployment precision for the latency tables: arch (default: each layer at the bits the "
                        "architecture chose), fp32 or int8 (every layer)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("pareto", help="Pareto front of a study: CSV, PNG and HTML")
    p.add_argument("--storage", default=DEFAULT_STORAGE)
    p.add_argument("--study", required=True)
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.set_defaults(func=cmd_pareto)
