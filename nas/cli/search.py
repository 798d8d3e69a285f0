"""`nas search` and `nas pareto`: flags -> SearchConfig -> nas.search; Ctrl-C, worker processes and the progress
bar live here (the library has no signal handlers and sets no global torch state)."""
from __future__ import annotations

import argparse
import multiprocessing
import signal
import threading
import time
from dataclasses import asdict

from nas.cli.vocabulary import Deprecated, add_out_dir, add_quiet, add_space, command, require_out_dir
from nas.errors import NasError
from nas.search.sampler_registry import DEFAULT_SAMPLER, SAMPLERS
from nas.search.storage import DEFAULT_JOURNAL, DEFAULT_STORAGE


class StopOnCtrlC:
    """First Ctrl-C sets ``event`` (the running trial finishes, then the search stops); a second one raises
    KeyboardInterrupt (the trial is aborted and marked FAIL by Optuna). Restores the old handler on exit."""

    def __init__(self):
        self.event = threading.Event()
        self._previous = None

    def _handler(self, signum, frame):
        if self.event.is_set():
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.event.set()

    def __enter__(self) -> "StopOnCtrlC":
        self._previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._previous)


def _quiet_optuna() -> None:
    """Optuna logs every finished trial at INFO; the command shows a progress bar instead."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def worker_main(cfg_dict: dict, worker: int, errors, ready=None) -> None:
    """Entry point of one worker process (spawned): its own Ctrl-C handling and torch threads. A NasError is
    handed to the parent (``errors``, a queue) to be reported as one line, not as the child's traceback.
    ``ready`` (a barrier of all workers) makes them start trials together once each has loaded its tables and
    scorer, so a fast first worker does not run a short study alone while the others are still importing."""
    import sys
    import warnings

    import torch

    from nas.latency.measure.host import HostMismatchWarning
    from nas.search import SearchConfig
    from nas.search.record import UncheckedResumeWarning
    from nas.search.run import TrialTakenOver, search_from_config

    cfg = SearchConfig(**cfg_dict)
    warnings.simplefilter("ignore", HostMismatchWarning)  # the parent printed it once
    warnings.simplefilter("ignore", UncheckedResumeWarning)  # the parent printed the note once
    torch.set_num_threads(cfg.threads)
    _quiet_optuna()
    with StopOnCtrlC() as ctrl_c:
        try:
            run = search_from_config(cfg, worker=worker)
            _wait_for_all(ready)
            run.optimize(cfg.trials, stop=ctrl_c.event)
        except KeyboardInterrupt:
            pass
        except TrialTakenOver as exc:  # not an error of the search: this worker stops, the others go on
            print(f"nas: note: worker {worker}: {exc.problem}", file=sys.stderr)
        except NasError as exc:
            errors.put((exc.problem, exc.where, exc.fix, exc.argument))
            raise SystemExit(2) from None


def _wait_for_all(ready, timeout_s: float = 120.0) -> None:
    """Wait at the start barrier; a worker that never arrives (it failed) does not hold the others."""
    if ready is None:
        return
    try:
        ready.wait(timeout_s)
    except threading.BrokenBarrierError:
        pass


class _Progress:
    """A tqdm bar over the study's finished trials, refreshed at most once a second (reading the study is not
    free), with the no-feasible warning after 20 trials."""

    def __init__(self, run, cfg, enabled: bool):
        from tqdm import tqdm

        self.run, self.cfg, self.last, self.warned = run, cfg, 0.0, False
        self.bar = tqdm(total=cfg.trials, desc=f"search {cfg.study}", unit="trial", disable=not enabled,
                        dynamic_ncols=True)

    def __call__(self, _frozen=None, force: bool = False) -> None:
        from nas.search.run import NO_FEASIBLE_CHECK_AFTER, format_latencies

        if not force and time.time() - self.last < 1.0:
            return
        self.last = time.time()
        status = self.run.status()
        self.bar.n = min(status["complete"], self.cfg.trials)
        self.bar.set_postfix(feasible=status["feasible"], front=status["front"], refresh=False)
        self.bar.refresh()
        if (not self.warned and status["complete"] >= NO_FEASIBLE_CHECK_AFTER and status["feasible"] == 0
                and self.cfg.latency_budget_ms is not None):
            self.warned = True
            self.bar.write(f"warning: no architecture met the budget in the first {status['complete']} trials; "
                           f"smallest latency seen: {format_latencies(status['smallest_latency_ms'])}")


def run_search(cfg, *, progress: bool = True):
    """Run (or resume) the configured study, in ``cfg.workers`` processes when more than one."""
    import sys
    import warnings

    import torch

    from nas.search.record import UncheckedResumeWarning
    from nas.search.run import TrialTakenOver, search_from_config, summarize

    cfg = cfg.resolved()
    torch.set_num_threads(cfg.threads)
    _quiet_optuna()
    with warnings.catch_warnings():  # its notes are printed once, here
        warnings.simplefilter("ignore", UncheckedResumeWarning)
        run = search_from_config(cfg)  # creates the study and fails early (device, table coverage) before workers
    for note in run.notes:
        print(f"nas: note: {note}", file=sys.stderr)
    start = time.time()
    bar = _Progress(run, cfg, progress)
    with StopOnCtrlC() as ctrl_c:
        try:
            bar(force=True)
            if cfg.workers == 1:
                run.optimize(cfg.trials, stop=ctrl_c.event, callback=bar)
            else:
                _run_workers(cfg, ctrl_c.event, bar)
            bar(force=True)
        except KeyboardInterrupt:
            pass
        except TrialTakenOver as exc:  # this worker stops cleanly; the study goes on without it
            bar.bar.close()
            print(f"nas: note: {exc.problem}", file=sys.stderr)
        finally:
            bar.bar.close()
    return summarize(run, cfg, time.time() - start)


def _run_workers(cfg, stop: threading.Event, bar) -> None:
    ctx = multiprocessing.get_context("spawn")
    errors, ready = ctx.SimpleQueue(), ctx.Barrier(cfg.workers)
    procs = [ctx.Process(target=worker_main, args=(asdict(cfg), w, errors, ready), daemon=False)
             for w in range(cfg.workers)]
    for p in procs:
        p.start()
    while any(p.is_alive() for p in procs):
        time.sleep(1.0)
        bar(force=True)
    if not errors.empty():  # the first worker's error, as the user would have seen it with --workers 1
        problem, where, fix, argument = errors.get()
        raise NasError(problem, where=where, fix=fix, argument=argument)
    failed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if failed and not stop.is_set():
        raise NasError(f"{len(failed)} worker process(es) failed (exit codes {failed})", where="--workers",
                       fix="rerun the same command to resume; run with --workers 1 to see the error")


def cmd_search(args: argparse.Namespace) -> None:
    from nas.search import SearchConfig

    cfg = SearchConfig(
        space=args.space, devices=args.devices, trials=args.trials, latency_budget_ms=args.latency_budget_ms,
        size_budget_mb=args.size_budget_mb, energy_budget_mj=args.energy_budget_mj,
        objectives=None if args.objectives is None else [o.strip() for o in args.objectives.split(",") if o.strip()],
        sampler=args.sampler, proxy=args.proxy, data=args.data, seed=args.seed, proxy_seed=args.proxy_seed,
        storage=args.storage, study=args.study, workers=args.workers, allow_estimate=args.allow_estimate,
        dtype=args.dtype, threads=args.threads,
    )
    from shlex import quote

    from nas.search.storage import public_url

    summary = run_search(cfg, progress=not args.quiet)
    print(f"study '{summary.study}' in {public_url(summary.storage)}: {summary.trials} trials, {summary.feasible} "
          f"feasible, Pareto front {summary.front_size} ({summary.seconds:.1f} s this run)")
    # quoted for a shell, the password left out (PGPASSWORD or ~/.pgpass supplies it)
    print(f"next: nas pareto --storage {quote(public_url(summary.storage, password=None))} --study "
          f"{quote(summary.study)} --out-dir {quote(f'pareto-{summary.study}')}")


def cmd_pareto(args: argparse.Namespace) -> None:
    from nas.search.report import write_report

    require_out_dir(args, "nas pareto")
    for path in write_report(args.storage, args.study, args.out_dir).values():
        print(f"wrote {path}")


def register(sub) -> None:
    p = command(sub, "search", help="multi-objective architecture search (Optuna study)",
                description="Search a space for architectures that are accurate (proxy) and fast on the target "
                            "device(s). Re-running the same command resumes the study.",
                examples=("nas search --space mobilenet-c10 --device x86-2vcpu --trials 200 "
                          "--objectives proxy,latency,size",
                          "nas search --space fbnet-c100 --device raspi4 --latency-budget 30 --trials 100"))
    add_space(p)
    p.add_argument("--device", dest="devices", action="append", required=True, metavar="NAME|PATH",
                   help="latency table (device name or path); repeat for several devices")
    p.add_argument("--trials", type=int, default=100,
                   help="total finished trials the study should hold (default 100)")
    p.add_argument("--latency-budget", dest="latency_budget_ms", type=float, metavar="MS", help="ms; on every device (default: none; a resumed study's own)")
    p.add_argument("--size-budget", dest="size_budget_mb", type=float, metavar="MB",
                   help="MB at the architecture's bit-widths (default: none; a resumed study's own)")
    p.add_argument("--energy-budget", dest="energy_budget_mj", type=float, metavar="MJ", help="mJ; on every device (tables with energy: bitfusion, edgegpu, "
                                                       "eyeriss, fpga; default: none; a resumed study's own)")
    p.add_argument("--objectives",
                   help="comma-separated: proxy, latency, energy, size, macs (default: proxy,latency; a resumed "
                        "study's own)")
    p.add_argument("--sampler", choices=tuple(SAMPLERS),
                   help="; ".join(f"{k.name}: {k.summary}" for k in SAMPLERS.values()) + f" (default for a new "
                        f"study: {DEFAULT_SAMPLER}; a resumed study keeps the sampler it was created with)")
    p.add_argument("--proxy", help="accuracy proxy (default: the benchmark-chosen one; see `nas score --help`)")
    p.add_argument("--data",
                   help="proxy input data: digits (default: bundled with scikit-learn, nothing to download, and an untrained "
                        "network's score needs no real training set; a resumed study's own), fashion-mnist, noise, a folder "
                        "with one sub-folder of images per class, or an .npz with x and y (the classifier gets its "
                        "classes)")
    p.add_argument("--seed", type=int, default=0,
                   help="the sampler's seed (default 0; each worker adds 1000 x its number); may differ between "
                        "runs of one study; a new study's proxy seed too, unless --proxy-seed")
    p.add_argument("--proxy-seed", type=int,
                   help="seed of the proxy's network initialisation and input batch (default: a resumed study's "
                        "own, else --seed); a resumed study refuses another")
    p.add_argument("--storage", help=f"Optuna storage URL (default {DEFAULT_STORAGE}; with --workers > 1: "
                                     f"{DEFAULT_JOURNAL}, both in the working folder); postgresql://... for many "
                                     "machines")
    p.add_argument("--study", help="study name (default: <space>-<devices>)")
    p.add_argument("--workers", type=int, default=1, help="processes working on the study (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker for the proxy (default 1)")
    p.add_argument("--allow-estimate", action="store_true", default=None,
                   help="fill latency-table gaps with the documented estimator (flagged per trial; default: off, "
                        "a resumed study's own)")
    p.add_argument("--dtype", choices=("arch", "fp32", "int8"),
                   help="deployment precision the tables price: arch (default: each layer at the bits the "
                        "architecture chose; a resumed study's own), fp32 or int8 (every layer)")
    p.add_argument("--latency-dtype", dest="dtype", action=Deprecated, new="--dtype",
                   choices=("arch", "fp32", "int8"))
    add_quiet(p)
    p.set_defaults(func=cmd_search)

    p = command(sub, "pareto", help="Pareto front of a study: CSV, PNG and HTML",
                examples=("nas pareto --study mobilenet-c10-x86-2vcpu --out-dir pareto",))
    p.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    p.add_argument("--study", required=True, help="study name (`nas search` prints it)")
    add_out_dir(p, "where pareto.html, pareto.png and pareto.csv go", old_o=True)
    p.set_defaults(func=cmd_pareto)
