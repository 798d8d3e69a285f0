"""Multi-objective architecture search: an Optuna study whose trials sample, score and constrain Architectures.

Everything a later step needs (canonical architecture, every metric, the latency tables' identities) is
stored in the trial's user attributes, so the storage alone is enough to plot, report and export.
"""
from __future__ import annotations

import math
import multiprocessing
import signal
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from nas.errors import NasError
from nas.layers import plan
from nas.space import SearchSpace, load_space
from nas.storage import DEFAULT_JOURNAL, DEFAULT_STORAGE, TrialHeartbeat, fail_stale_trials, open_storage

OBJECTIVES = ("proxy", "latency", "size", "macs")
SAMPLERS = ("nsga2", "tpe", "random")
NO_FEASIBLE_CHECK_AFTER = 20


@dataclass
class SearchConfig:
    space: str
    devices: list[str]
    trials: int = 100
    latency_budget_ms: float | None = None
    size_budget_mb: float | None = None
    objectives: list[str] = field(default_factory=lambda: ["proxy", "latency"])
    sampler: str = "nsga2"
    proxy: str | None = None  # None: the benchmark-chosen default (nas.proxies.DEFAULT_PROXY)
    data: str = "digits"
    seed: int = 0
    storage: str | None = None
    study: str | None = None
    workers: int = 1
    allow_estimate: bool = False
    latency_dtype: str | None = None  # None/"arch": each layer at its own bit-widths; "fp32" / "int8": all layers
    threads: int = 1  # torch threads per worker: small proxy nets gain nothing from more, and oversubscribe

    def resolved(self) -> "SearchConfig":
        """Fill defaults and check every option before anything is created."""
        from nas.proxies import DEFAULT_PROXY, available

        cfg = SearchConfig(**asdict(self))
        if not cfg.devices:
            raise NasError("at least one --device is needed", where="--device", fix="e.g. --device raspi4")
        if cfg.trials < 1:
            raise NasError(f"--trials must be >= 1, got {cfg.trials}", where="--trials")
        if cfg.workers < 1:
            raise NasError(f"--workers must be >= 1, got {cfg.workers}", where="--workers")
        if cfg.threads < 1:
            raise NasError(f"--threads must be >= 1, got {cfg.threads}", where="--threads")
        if cfg.sampler not in SAMPLERS:
            raise NasError(f"unknown sampler '{cfg.sampler}'", where="--sampler", fix=f"use one of {', '.join(SAMPLERS)}")
        bad = [o for o in cfg.objectives if o not in OBJECTIVES]
        if bad or not cfg.objectives or len(set(cfg.objectives)) != len(cfg.objectives):
            raise NasError(f"bad objectives {','.join(cfg.objectives)}", where="--objectives",
                           fix=f"a comma-separated subset of {', '.join(OBJECTIVES)} without repeats")
        for name, v in (("--latency-budget", cfg.latency_budget_ms), ("--size-budget", cfg.size_budget_mb)):
            if v is not None and not (v > 0 and math.isfinite(v)):
                raise NasError(f"must be a positive number, got {v}", where=name)
        cfg.proxy = cfg.proxy or DEFAULT_PROXY
        if cfg.proxy not in available():
            raise NasError(f"unknown proxy '{cfg.proxy}'", where="--proxy", fix=f"use one of {', '.join(available())}")
        cfg.study = cfg.study or f"{cfg.space}-{'+'.join(cfg.devices)}"
        cfg.storage = cfg.storage or (DEFAULT_JOURNAL if cfg.workers > 1 else DEFAULT_STORAGE)
        return cfg

    def study_attrs(self) -> dict[str, Any]:
        """What must not change when a study is resumed (stored in the study's user attributes)."""
        return {"space": self.space, "devices": list(self.devices), "objectives": list(self.objectives),
                "latency_budget_ms": self.latency_budget_ms, "size_budget_mb": self.size_budget_mb,
                "proxy": self.proxy, "data": self.data, "latency_dtype": self.latency_dtype or "arch"}


def directions(cfg: SearchConfig) -> list[str]:
    out = []
    for o in cfg.objectives:
        if o == "latency":
            out += ["minimize"] * len(cfg.devices)
        else:
            out.append("maximize" if o == "proxy" else "minimize")
    return out


def objective_names(cfg: SearchConfig) -> list[str]:
    """Column names of the objective values, in Optuna's order."""
    out = []
    for o in cfg.objectives:
        if o == "latency":
            out += [f"latency_ms.{d}" for d in cfg.devices]
        else:
            out.append({"proxy": f"proxy.{cfg.proxy}", "size": "size_mb", "macs": "macs"}[o])
    return out


class Evaluator:
    """Scores architectures: proxy, latency per device (with breakdown), size, MACs, params. Cached by
    canonical architecture, so identical candidates are scored once per process (and once per study: the
    cache is seeded from the study's finished trials)."""

    def __init__(self, cfg: SearchConfig, space: SearchSpace):
        from nas.latency import load_latency_model
        from nas.proxies import Scorer

        self.cfg, self.space = cfg, space
        self.latency = {d: load_latency_model(d, dtype=cfg.latency_dtype) for d in cfg.devices}
        if not cfg.allow_estimate:  # any signature of the space may come up: refuse a partial table up front
            for device, model in self.latency.items():
                try:
                    model.check_covers(space)
                except NasError as exc:
                    measured = str(getattr(getattr(model, "table", None), "meta", {}).get("dtype", ""))
                    if cfg.latency_dtype in (None, "arch") and measured in ("fp32", "int8"):
                        exc.fix = (f"{exc.fix}; or search with --latency-dtype {measured} "
                                   f"(table '{device}' was measured with every layer at {measured})")
                    raise NasError(exc.problem, where=exc.where, fix=exc.fix) from None
        self.scorer = Scorer(space, [cfg.proxy], data=cfg.data, seed=cfg.seed)
        self.cache: dict[str, dict[str, Any]] = {}

    def lut_identities(self) -> dict[str, Any]:
        return {d: m.identity for d, m in self.latency.items()}

    def evaluate(self, arch) -> dict[str, Any]:
        key = self.space.format(arch)
        if key in self.cache:
            return self.cache[key]
        layers = plan(arch, self.space)
        metrics: dict[str, Any] = {
            "params": sum(l.params() for l in layers),
            "macs": sum(l.macs() for l in layers),
            "size_mb": sum(l.size_bytes() for l in layers) / 1e6,
        }
        for d, model in self.latency.items():
            pred = model.predict(arch, self.space, allow_estimate=self.cfg.allow_estimate)
            metrics[f"latency_ms.{d}"] = float(pred.latency_ms)
            if pred.energy_mJ is not None:
                metrics[f"energy_mJ.{d}"] = float(pred.energy_mJ)
            if pred.estimated:
                metrics[f"latency_estimated.{d}"] = True
        for name, value in self.scorer.score(arch).items():
            metrics[f"proxy.{name}"] = float(value)
        self.cache[key] = metrics
        return metrics

    def seed_cache(self, study) -> None:
        from optuna.trial import TrialState

        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if "arch" in t.user_attrs and "metrics" in t.user_attrs:
                metrics = {k: v for k, v in t.user_attrs["metrics"].items() if k not in ("feasible", "duplicate")}
                self.cache.setdefault(t.user_attrs["arch"], metrics)


def objective_values(cfg: SearchConfig, metrics: dict[str, Any]) -> list[float]:
    values = []
    for name, direction in zip(objective_names(cfg), directions(cfg)):
        v = float(metrics[name])
        if math.isnan(v) or math.isinf(v):  # degenerate network: ranked last, never a crash
            v = -1e300 if direction == "maximize" else 1e300
        values.append(v)
    return values


def constraints(cfg: SearchConfig, metrics: dict[str, Any]) -> dict[str, float]:
    """Optuna constraint values: <= 0 means satisfied."""
    out = {}
    if cfg.latency_budget_ms is not None:
        for d in cfg.devices:
            out[f"latency.{d}"] = metrics[f"latency_ms.{d}"] - cfg.latency_budget_ms
    if cfg.size_budget_mb is not None:
        out["size"] = metrics["size_mb"] - cfg.size_budget_mb
    return out


def make_sampler(cfg: SearchConfig, worker: int = 0):
    import optuna

    seed = cfg.seed + 1000 * worker
    if cfg.sampler == "nsga2":
        # Optuna's default population (50) leaves a 100-trial study two generations; aim for >= 10
        population = min(50, max(10, cfg.trials // 10))
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    if cfg.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
    return optuna.samplers.RandomSampler(seed=seed)


def open_study(cfg: SearchConfig, *, create: bool, worker: int = 0):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(cfg.storage)
    if create:
        study = optuna.create_study(study_name=cfg.study, storage=storage, directions=directions(cfg),
                                    sampler=make_sampler(cfg, worker), load_if_exists=True)
        stored = study.user_attrs.get("config")
        if stored is None:
            study.set_user_attr("config", cfg.study_attrs())
        else:
            for key, value in cfg.study_attrs().items():
                if stored.get(key) != value:
                    raise NasError(f"study '{cfg.study}' was created with {key}={stored.get(key)!r}, this run asks "
                                   f"for {value!r}", where=f"--study {cfg.study}",
                                   fix="rerun with the study's options to resume it, or pass a new --study name")
        return study
    return optuna.load_study(study_name=cfg.study, storage=storage, sampler=make_sampler(cfg, worker))


class _Stop:
    """First Ctrl-C: finish the running trial, then stop. Second Ctrl-C: abort it (Optuna marks it FAIL)."""

    requested = False

    @classmethod
    def install(cls) -> None:
        def handler(signum, frame):
            if cls.requested:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                raise KeyboardInterrupt
            cls.requested = True

        signal.signal(signal.SIGINT, handler)


def run_worker(cfg: SearchConfig, worker: int = 0, on_trial=None, evaluator: Evaluator | None = None) -> None:
    """Run trials on the study until it holds ``cfg.trials`` finished trials (or a stop is requested).

    ``evaluator`` may be shared between studies of one process (benchmarks) so scores are computed once.
    """
    import optuna
    from optuna.trial import TrialState

    import torch

    torch.set_num_threads(cfg.threads)
    space = load_space(cfg.space)
    study = open_study(cfg, create=(worker == 0 and cfg.workers == 1), worker=worker)
    evaluator = evaluator or Evaluator(cfg, space)
    evaluator.seed_cache(study)
    identities = evaluator.lut_identities()

    def objective(trial: optuna.Trial) -> list[float]:
        beat = TrialHeartbeat(study._storage, trial._trial_id)
        try:
            arch = space.sample(lambda name, options: trial.suggest_categorical(name, options))
            key = space.format(arch)
            duplicate = key in evaluator.cache
            metrics = evaluator.evaluate(arch)
            cons = constraints(cfg, metrics)
            for k, v in cons.items():
                trial.set_constraint(k, v)
            # three attributes (each is a storage write): what to plot, what to rebuild, where it came from
            trial.set_user_attr("arch", key)
            trial.set_user_attr("metrics", {**metrics, "feasible": all(v <= 0 for v in cons.values()),
                                            "duplicate": duplicate})
            trial.set_user_attr("provenance", {"space": space.name, "arch_json": arch.to_json(),
                                               "latency_tables": identities, "worker": worker})
            return objective_values(cfg, metrics)
        finally:
            beat.stop()

    def callback(study_, frozen) -> None:
        fail_stale_trials(study_)
        if on_trial:
            on_trial(frozen)
        done = len(study_.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        if _Stop.requested or done >= cfg.trials:
            study_.stop()

    fail_stale_trials(study)
    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) >= cfg.trials:
        return
    study.optimize(objective, n_trials=None, callbacks=[callback], catch=())


def _worker_main(cfg_dict: dict, worker: int) -> None:
    _Stop.install()
    try:
        run_worker(SearchConfig(**cfg_dict), worker)
    except KeyboardInterrupt:
        pass


@dataclass
class SearchSummary:
    study: str
    storage: str
    trials: int
    feasible: int
    front_size: int
    smallest_latency_ms: dict[str, float]
    seconds: float


def search(cfg: SearchConfig, *, progress: bool = True, evaluator: Evaluator | None = None) -> SearchSummary:
    """Run (or resume) a study; with ``workers > 1`` in W processes on one storage."""
    from tqdm import tqdm

    cfg = cfg.resolved()
    space = load_space(cfg.space)  # fail on an unknown space before opening anything
    # fail early (unknown device, table not covering the space) before a study is created
    evaluator = evaluator or Evaluator(cfg, space)
    study = open_study(cfg, create=True)
    start = time.time()
    _Stop.requested = False
    previous = signal.getsignal(signal.SIGINT)
    _Stop.install()
    bar = tqdm(total=cfg.trials, desc=f"search {cfg.study}", unit="trial", disable=not progress, dynamic_ncols=True)
    warned = [False]
    last = [0.0]

    def refresh(_frozen=None, force: bool = False) -> None:
        if not force and time.time() - last[0] < 1.0:  # reading the whole study is not free: once a second
            return
        last[0] = time.time()
        status = study_status(study, cfg)
        bar.n = min(status["complete"], cfg.trials)
        bar.set_postfix(feasible=status["feasible"], front=status["front"], refresh=False)
        bar.refresh()
        if (not warned[0] and status["complete"] >= NO_FEASIBLE_CHECK_AFTER and status["feasible"] == 0
                and cfg.latency_budget_ms is not None):
            warned[0] = True
            bar.write(f"warning: no architecture met the budget in the first {status['complete']} trials; "
                      f"smallest latency seen: {_fmt_lat(status['smallest_latency_ms'])}")

    try:
        refresh()
        if cfg.workers == 1:
            run_worker(cfg, 0, on_trial=refresh, evaluator=evaluator)
        else:
            ctx = multiprocessing.get_context("spawn")
            procs = [ctx.Process(target=_worker_main, args=(asdict(cfg), w), daemon=False) for w in range(cfg.workers)]
            for p in procs:
                p.start()
            while any(p.is_alive() for p in procs):
                time.sleep(1.0)
                refresh(force=True)
            failed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
            if failed and not _Stop.requested:
                raise NasError(f"{len(failed)} worker process(es) failed (exit codes {failed})", where="--workers",
                               fix="rerun the same command to resume; run with --workers 1 to see the error")
        refresh(force=True)
    except KeyboardInterrupt:
        pass
    finally:
        bar.close()
        signal.signal(signal.SIGINT, previous)
    status = study_status(study, cfg)
    summary = SearchSummary(study=cfg.study, storage=cfg.storage, trials=status["complete"],
                            feasible=status["feasible"], front_size=status["front"],
                            smallest_latency_ms=status["smallest_latency_ms"], seconds=time.time() - start)
    if status["complete"] and status["feasible"] == 0:
        raise NasError(f"no architecture met the budget in {status['complete']} trials (smallest latency seen: "
                       f"{_fmt_lat(status['smallest_latency_ms'])}; study kept in {cfg.storage})",
                       where="--latency-budget" if cfg.latency_budget_ms is not None else "--size-budget",
                       fix="raise the budget and use a new --study name")
    return summary


def _fmt_lat(values: dict[str, float]) -> str:
    return ", ".join(f"{d} {v:.3f} ms" for d, v in values.items()) or "n/a"


def study_status(study, cfg: SearchConfig) -> dict[str, Any]:
    """Counts for the progress bar and summary: complete, feasible, Pareto-front size, smallest latency."""
    from optuna.trial import TrialState

    from nas.pareto import pareto_mask

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    feasible = [t for t in trials if t.user_attrs.get("metrics", {}).get("feasible", True)]
    smallest = {}
    for d in cfg.devices:
        lats = [t.user_attrs["metrics"][f"latency_ms.{d}"] for t in trials if "metrics" in t.user_attrs]
        if lats:
            smallest[d] = min(lats)
    front = 0
    if feasible:
        import numpy as np

        values = np.array([t.values for t in feasible], dtype=float)
        front = int(pareto_mask(values, directions(cfg)).sum())
    return {"complete": len(trials), "feasible": len(feasible), "front": front, "smallest_latency_ms": smallest}
