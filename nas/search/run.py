"""Multi-objective architecture search: an Optuna study whose trials sample, score and constrain Architectures.

    import nas, optuna
    space = nas.load_space("fbnet-c100")
    search = nas.search.create_search(space, latency=[nas.latency.load("raspi4")],
                                      scorer=nas.proxies.Scorer(space, ["naswot"], data="digits"),
                                      constraints=nas.search.Budgets(latency_ms=30),
                                      sampler=optuna.samplers.NSGAIISampler(seed=0), storage="sqlite:///s.db")
    search.optimize(200)            # until the study holds 200 finished trials (re-running resumes)
    search.front()                  # DataFrame of the feasible Pareto front; search.study is the Optuna study

Everything a later step needs (canonical architecture, every metric, the latency tables' identities) is
stored in the trial's user attributes, so the storage alone is enough to plot, report and export. The library
installs no signal handler and sets no global state: stopping is a ``threading.Event`` passed to ``optimize``
(the CLI sets it on Ctrl-C), torch threads are the caller's choice.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from nas.deprecation import renamed_arguments
from nas.errors import NasError
from nas.memory import release_free_memory
from nas.optuna_compat import storage_of, trial_id_of
from nas.search.config import SearchConfig
from nas.search.evaluator import Evaluator, by_device
from nas.search.front import front_of, pareto_mask
from nas.search.heartbeat import StaleTrials, TrialHeartbeat
from nas.search.objectives import Budgets, Objectives, check_objectives
from nas.search.record import UncheckedResumeWarning, record_change, score_record, space_record, unchecked_note
from nas.search.sampler_registry import DEFAULT_SAMPLER, LEGACY_SAMPLER, SAMPLERS, make_sampler, sampler_name
from nas.search.storage import open_storage, public_url
from nas.search.study_trials import SharedDistributions, TrialIndex

NO_FEASIBLE_CHECK_AFTER = 20
SHARE_EVERY = 50  # trials between SharedDistributions passes (each lists the study once, without copies)
RELEASE_EVERY_S = 1.0  # seconds between returns of freed memory: <= 0.5 % of the time even for 4-ms trials
# a proxy that scores NaN this often is broken, not the architectures (degenerate networks are rare)
NAN_SHARE_LIMIT, NAN_CHECK_AFTER, NAN_ALL_FIRST = 0.20, 20, 10


class _TakenOver(BaseException):
    """Raised in a trial found taken over: not an Exception, so Optuna neither tells nor logs the trial (it is
    another worker's now); :meth:`Search.optimize` turns it into a :class:`TrialTakenOver`."""


class TrialTakenOver(NasError):
    """The trial this worker was running was failed as stale by another worker (this one was paused or starved
    past the grace period): its parameters are re-run from the queue; this worker stops."""


class Search:
    """A study plus what scores its trials. Build it with :func:`create_search`."""

    def __init__(self, study, space, evaluator: Evaluator, objectives: Objectives, budgets: Budgets, *,
                 worker: int = 0, notes: list[str] | None = None):
        self.study, self.space, self.evaluator = study, space, evaluator
        self.objectives, self.budgets, self.worker = objectives, budgets, worker
        self.notes = list(notes or [])  # one line each, for the user (e.g. a resumed study that was not checked)
        self._identities = evaluator.lut_identities()
        self.networks = evaluator.seed_cache(study)  # the networks this study has scored
        self._nan_counts: dict[str, int] = {}  # proxy NaNs among the complete trials checked so far
        self._status: StudyStatus | None = None  # made at the first status(): reads only new trials after it
        self.stale = StaleTrials(study)  # this process's watch over the study's running trials
        self._running: int | None = None  # the trial this process runs now (its id)

    def complete(self) -> int:
        from optuna.trial import TrialState

        return len(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    def _objective(self, trial) -> list[float]:
        from optuna.exceptions import UpdateFinishedTrialError

        self._running = trial_id_of(trial)
        beat = TrialHeartbeat(storage_of(self.study), self._running)
        try:
            arch = self.space.sample(trial.suggest_categorical)
            key = self.space.format(arch)
            network = self.evaluator.network(arch)
            duplicate = network in self.networks  # the same network as an earlier trial's
            self.networks.add(network)
            metrics = self.evaluator.evaluate(arch)
            cons = self.budgets.constraints(metrics, self.objectives.devices)
            for k, v in cons.items():
                trial.set_constraint(k, v)
            # three attributes (each is a storage write): what to plot, what to rebuild, where it came from
            trial.set_user_attr("arch", key)
            trial.set_user_attr("metrics", {**metrics, "feasible": all(v <= 0 for v in cons.values()),
                                            "duplicate": duplicate})
            trial.set_user_attr("provenance", {"space": self.space.name, "arch_json": arch.to_json(),
                                               "latency_tables": self._identities, "worker": self.worker})
            return self.objectives.values(metrics)
        except UpdateFinishedTrialError:  # another worker failed it as stale meanwhile
            raise _TakenOver from None  # past Optuna's tell (which would fail on it, with a traceback logged)
        finally:
            beat.stop()

    def _taken_over_message(self, number: int) -> str:
        return (f"trial {number} was taken over by another worker: its heartbeat stood still for the grace period "
                f"({self.stale.grace():.0f} s; a paused, suspended or starved worker?); it is re-run from the "
                "queue, and this worker stops")

    def _taken_over(self) -> bool:
        """Whether the trial this process was running has been failed by another worker."""
        from optuna.trial import TrialState

        if self._running is None:
            return False
        return storage_of(self.study).get_trial(self._running).state == TrialState.FAIL

    def optimize(self, n_trials: int, *, stop: threading.Event | None = None,
                 callback: Callable[[Any], None] | None = None) -> None:
        """Run trials until the study holds ``n_trials`` finished trials (so re-running resumes), or until
        ``stop`` is set (the running trial finishes first). ``callback(frozen_trial)`` runs after each trial.

        Raises a NasError naming the proxy when it scores NaN too often (a broken proxy, not degenerate
        architectures): over 20 % of the trials after 20, or all of the first 10.
        """
        from optuna.trial import TrialState

        index = TrialIndex(self.study)  # reads only new and open trials after each one, not the whole study
        finished, unfinished = index.refresh()
        self.stale.observe(finished)
        self.stale.settle(unfinished)  # crashed workers' trials are re-queued before this run's own
        complete = sum(t.state == TrialState.COMPLETE for t in finished)
        if complete >= n_trials:
            return
        self._nan_counts = {"n": 0, "nan": 0}
        self._check_nan_share([t for t in finished if t.state == TrialState.COMPLETE])
        shared = SharedDistributions(self.study)  # what Optuna keeps of each trial, without 124 copies a trial
        released_at = time.monotonic()

        def after_trial(study, frozen) -> None:
            nonlocal complete, released_at
            done, still_open = index.refresh()
            self.stale.observe(done)
            self.stale.fail(still_open)
            if callback is not None:
                callback(frozen)
            new = [t for t in done if t.state == TrialState.COMPLETE]
            if complete // SHARE_EVERY != (complete + len(new)) // SHARE_EVERY:
                shared.share()
            if time.monotonic() - released_at >= RELEASE_EVERY_S:  # what the trials freed goes back to the system
                release_free_memory()  # (~5 ms), not kept at their high-water mark
                released_at = time.monotonic()
            complete += len(new)
            self._check_nan_share(new)
            if (stop is not None and stop.is_set()) or complete >= n_trials:
                study.stop()

        try:
            self.study.optimize(self._objective, n_trials=None, callbacks=[after_trial], catch=())
        except (_TakenOver, ValueError, AssertionError) as exc:
            # taken over after its last write: Optuna's tell raises "Cannot tell a FAIL trial." (or, from its
            # finally, "Should not reach."); any other ValueError or AssertionError is not about that
            told = str(exc).startswith(("Cannot tell a FAIL trial", "Should not reach"))
            if not isinstance(exc, _TakenOver) and not (told and self._taken_over()):
                raise
            number = storage_of(self.study).get_trial(self._running).number
            raise TrialTakenOver(self._taken_over_message(number)) from None
        finally:
            self._running = None

    def _check_nan_share(self, new_trials) -> None:
        """Count the proxy's NaNs among ``new_trials`` (complete, not counted before) and stop a broken proxy."""
        column = f"proxy.{self.objectives.proxy}"
        n, nan = self._nan_counts.get("n", 0), self._nan_counts.get("nan", 0)
        for t in new_trials:
            if "metrics" in t.user_attrs:
                v = t.user_attrs["metrics"].get(column)
                n, nan = n + 1, nan + (v is None or not math.isfinite(v))
        self._nan_counts = {"n": n, "nan": nan}
        if (n >= NAN_CHECK_AFTER and nan > NAN_SHARE_LIMIT * n) or (n == NAN_ALL_FIRST and nan == n):
            raise NasError(f"proxy '{self.objectives.proxy}' scored NaN on {nan} of {n} trials: the proxy is "
                           "broken for this space, not the architectures", argument="proxy",
                           fix="score a few architectures with it alone (Scorer.score) to see why, or use "
                               "another proxy; the study is kept")

    def front(self):
        """The feasible, non-duplicate Pareto front as a DataFrame (sorted by the first latency objective)."""
        return front_of(self.study, self.objectives)

    def status(self) -> dict[str, Any]:
        """Counts for progress and summaries: complete, feasible, Pareto-front size, smallest latency. Kept up
        to date from the trials finished since the last call (the CLI asks every second)."""
        if self._status is None:
            self._status = StudyStatus(self.study, self.objectives)
        return self._status()


@renamed_arguments(study_name="study")
def create_search(space, *, latency: list, scorer, objectives=None, constraints=None, sampler=None, storage=None,
                  study: str | None = None, allow_estimate: bool | None = None, load_if_exists: bool = True,
                  worker: int = 0, evaluator: Evaluator | None = None, trials: int = 100,
                  seed: int | None = None) -> Search:
    """A new (or resumed) search of ``space``.

    ``latency``: LatencyModels (``nas.latency.load``), one objective each; ``scorer``: a ``nas.proxies.Scorer``
    (its first proxy is the accuracy objective, its seed the proxy's); ``objectives``: a subset of proxy,
    latency, size, macs, energy; ``constraints``: budgets as :class:`Budgets` or a mapping ``{'latency_ms': 30,
    'size_mb': 2}`` (Optuna constraints: latency on every device, size at the chosen bit-widths); ``sampler``: an
    Optuna sampler or a registered name (:data:`nas.search.sampler_registry.SAMPLERS`) set up for ``trials``
    proxy-scored trials; None: the sampler a resumed study was created with, else ``front``
    (:class:`nas.search.sampler.FrontSampler`);
    ``seed``: the named sampler's seed (each worker adds 1000 x ``worker``; None: the scorer's seed), free to
    differ between the runs and workers of one study; ``storage``: an Optuna storage or a URL (sqlite:///...,
    journal:FILE.journal, postgresql://...; default in memory); ``study``: the study's name (default
    ``<space>-<devices>``). ``evaluator`` may be shared between searches of
    one process (benchmarks) so scores are computed once.

    ``objectives``, ``constraints`` and ``allow_estimate`` left out (None) are a resumed study's own (a new
    study's: proxy and latency, no budgets, False). A resumed study must have been created with the same
    options, tables, space, data and proxy seed (:mod:`nas.search.record`): a difference is a NasError naming
    it. A study created before that record resumes with a note (``Search.notes``, also warned as an
    :class:`~nas.search.record.UncheckedResumeWarning`).
    """
    import warnings

    import optuna

    from nas.space import load_space

    space = load_space(space) if isinstance(space, str) else space
    models = by_device(latency)
    if not models:
        raise NasError("at least one latency model is needed", argument="latency",
                       fix="e.g. latency=[nas.latency.load('raspi4')]")
    if isinstance(storage, str):
        storage = open_storage(storage)
    study_name = study or f"{space.name}-{'+'.join(models)}"
    objectives, constraints, allow_estimate = _left_out(_stored_config(storage, study_name), objectives,
                                                        constraints, allow_estimate, evaluator)
    spec = Objectives(check_objectives(objectives), tuple(models), scorer.proxies[0])
    budgets = _budgets(constraints)
    evaluator = evaluator or Evaluator(space, models, scorer, allow_estimate=allow_estimate)
    if "energy" in spec.kinds or budgets.energy_mj is not None:
        _check_energy(space, models)
    study = optuna.create_study(study_name=study_name, storage=storage, directions=spec.directions,
                                sampler=optuna.samplers.RandomSampler(), load_if_exists=load_if_exists)
    stored = study.user_attrs.get("config")
    sampler = _sampler(sampler, stored, study_name, (scorer.seed if seed is None else seed) + 1000 * worker, trials)
    if hasattr(sampler, "bind"):
        sampler.bind(space, evaluator, spec, budgets)
    study.sampler = sampler
    attrs = {"space": space.name, "devices": list(models), "objectives": list(spec.kinds),
             "latency_budget_ms": budgets.latency_ms, "size_budget_mb": budgets.size_mb, "proxy": spec.proxy,
             **({"energy_budget_mj": budgets.energy_mj} if budgets.energy_mj is not None else {}),
             "data": scorer.data, "latency_dtype": getattr(next(iter(models.values())), "dtype", "arch"),
             "sampler": sampler_name(sampler), "proxy_seed": scorer.seed, "allow_estimate": evaluator.allow_estimate,
             "record": score_record(space, models, scorer)}
    notes: list[str] = []
    if stored is None:
        for key, value in space_record(space).items():  # the space itself, for reports and exports
            study.set_user_attr(key, value)
        study.set_user_attr("config", attrs)
        _name_objectives(study, spec.columns)
    else:
        notes = _check_resume(study_name, stored, attrs)
    for note in notes:
        warnings.warn(UncheckedResumeWarning(note), stacklevel=3)  # the caller (2: @renamed_arguments)
    return Search(study, space, evaluator, spec, budgets, worker=worker, notes=notes)


def _stored_config(storage, study_name: str) -> dict | None:
    """The config a study of that name stored, read before anything is created (None: no such study)."""
    if storage is None:
        return None
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(study_id).get("config")


def _left_out(stored: dict | None, objectives, constraints, allow_estimate, evaluator) -> tuple:
    """(objectives, constraints, allow_estimate) with what was left out (None) taken from a resumed study's
    config, else the defaults; a shared ``evaluator`` decides ``allow_estimate``."""
    stored = stored or {}
    if objectives is None:
        objectives = stored.get("objectives") or ("proxy", "latency")
    if constraints is None and stored:
        constraints = Budgets(stored.get("latency_budget_ms"), stored.get("size_budget_mb"),
                              stored.get("energy_budget_mj"))
    if evaluator is not None:
        allow_estimate = evaluator.allow_estimate
    elif allow_estimate is None:
        allow_estimate = bool(stored.get("allow_estimate", False))
    return objectives, constraints, allow_estimate


def _sampler(sampler, stored: dict | None, study_name: str, seed: int, trials: int):
    """The sampler object: as given, or made by name (None: the resumed study's, else the default)."""
    if sampler is not None and not isinstance(sampler, str):
        return sampler
    name = sampler or (stored.get("sampler", LEGACY_SAMPLER) if stored is not None else DEFAULT_SAMPLER)
    if name not in SAMPLERS:
        raise NasError(f"study '{study_name}' was created with a {name} passed as an object", argument="sampler",
                       fix=f"pass the same kind of sampler (an optuna {name}) to resume it")
    return make_sampler(name, seed=seed, trials=trials)


def _check_resume(study_name: str, stored: dict, attrs: dict) -> list[str]:
    """Refuse a resumed study whose options or record (:func:`~nas.search.record.record_change`) differ from
    this run's; returns the note of a study created before the record (nothing to check against)."""
    legacy = "record" not in stored
    for key, value in attrs.items():
        if key == "record" or (legacy and key in ("proxy_seed", "allow_estimate")):
            continue
        if stored.get(key, LEGACY_SAMPLER if key == "sampler" else None) != value:
            raise NasError(f"study '{study_name}' was created with {key}={stored.get(key)!r}, this run asks "
                           f"for {value!r}", argument="sampler" if key == "sampler" else "study",
                           fix="rerun with the study's options to resume it (or leave them out), or name a new "
                               "study=NAME")
    if legacy:
        return [unchecked_note(study_name)]
    change = record_change(study_name, stored["record"], attrs["record"])
    if change:
        raise NasError(change, argument="study",
                       fix="restore what the study was created with to resume it, or name a new study=NAME")
    return []


def _name_objectives(study, columns: list[str]) -> None:
    """Objective names in the study itself, so Optuna's plots and optuna-dashboard label the axes."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # set_metric_names is marked experimental
        study.set_metric_names(list(columns))


def build_evaluator(cfg: SearchConfig) -> Evaluator:
    """The latency models and scorer a :class:`SearchConfig` names, as an Evaluator."""
    from nas.latency.load import load as load_latency
    from nas.proxies import Scorer
    from nas.space import load_space

    from nas.data.datasets import space_for_data

    cfg = cfg.resolved()
    space = space_for_data(load_space(cfg.space), cfg.data)  # a user's data brings its own class count
    try:
        models = [load_latency(d, dtype=cfg.dtype) for d in cfg.devices]
    except NasError as exc:  # one of the config's devices: the argument at fault is `devices`
        if exc.argument != "device":
            raise
        raise NasError(exc.problem, where=exc.where, fix=exc.fix, argument="devices") from None
    latency = by_device(models, cfg.devices, argument="devices")
    return Evaluator(space, latency, Scorer(space, [cfg.proxy], data=cfg.data, seed=cfg.proxy_seed),
                     allow_estimate=cfg.allow_estimate)


def _check_energy(space, models: dict) -> None:
    """Energy as an objective or budget needs every device's model to price it (tried on one architecture)."""
    arch = space.sample_many(1, seed=0)[0]
    for device, model in models.items():
        if model.predict(arch, space, allow_estimate=True).energy_mJ is None:
            raise NasError(f"latency model '{device}' gives no energy", argument="objectives",
                           fix="use tables with energy (bitfusion, edgegpu, eyeriss, fpga) or drop energy from the "
                               "objectives and budgets")


def _budgets(constraints) -> Budgets:
    if constraints is None or isinstance(constraints, Budgets):
        return constraints or Budgets()
    try:
        return Budgets(**dict(constraints))
    except (TypeError, ValueError):
        raise NasError(f"constraints must be a Budgets or a mapping with latency_ms, size_mb and/or energy_mj, got "
                       f"{constraints!r}", argument="constraints",
                       fix="e.g. constraints={'latency_ms': 30} or nas.search.Budgets(latency_ms=30)") from None


def search_from_config(cfg: SearchConfig, *, worker: int = 0, evaluator: Evaluator | None = None) -> Search:
    """The :class:`Search` a :class:`SearchConfig` describes (what the CLI and each worker process build)."""
    cfg = cfg.resolved()
    evaluator = evaluator or build_evaluator(cfg)
    latency = list(evaluator.latency.values())
    return create_search(evaluator.space, latency=latency, scorer=evaluator.scorer, objectives=cfg.objectives,
                         constraints=cfg.budgets, sampler=cfg.sampler, trials=cfg.trials, storage=cfg.storage,
                         study=cfg.study, allow_estimate=cfg.allow_estimate, worker=worker,
                         evaluator=evaluator, seed=cfg.seed)


@dataclass
class SearchSummary:
    study: str
    storage: str
    trials: int
    feasible: int
    front_size: int
    smallest_latency_ms: dict[str, float]
    seconds: float


def search(cfg: SearchConfig, *, evaluator: Evaluator | None = None, stop: threading.Event | None = None,
           callback: Callable[[Any], None] | None = None) -> SearchSummary:
    """Run (or resume) the study ``cfg`` describes in this process until it holds ``cfg.trials`` finished
    trials; raises a NasError (study kept) when no trial met the budgets."""
    import time

    cfg = cfg.resolved()
    run = search_from_config(cfg, evaluator=evaluator)
    start = time.time()
    run.optimize(cfg.trials, stop=stop, callback=callback)
    return summarize(run, cfg, time.time() - start)


def summarize(run: Search, cfg: SearchConfig, seconds: float) -> SearchSummary:
    """The summary of a finished run; an error (study kept) when it ended with no feasible trial."""
    status = run.status()
    summary = SearchSummary(study=cfg.study, storage=cfg.storage, trials=status["complete"],
                            feasible=status["feasible"], front_size=status["front"],
                            smallest_latency_ms=status["smallest_latency_ms"], seconds=seconds)
    if status["complete"] and status["feasible"] == 0:
        raise NasError(f"no architecture met the budget in {status['complete']} trials (smallest latency seen: "
                       f"{format_latencies(status['smallest_latency_ms'])}; study kept in "
                       f"{public_url(cfg.storage)})",
                       argument=next((n for n in ("latency_budget_ms", "energy_budget_mj", "size_budget_mb")
                                      if getattr(cfg, n) is not None), "latency_budget_ms"),
                       fix="raise the budget and use a new study name")
    return summary


def format_latencies(values: dict[str, float]) -> str:
    return ", ".join(f"{d} {v:.3f} ms" for d, v in values.items()) or "n/a"


def study_status(study, objectives: Objectives) -> dict[str, Any]:
    """Counts for the progress bar and summary: complete, feasible, Pareto-front size, smallest latency."""
    return StudyStatus(study, objectives)()


class StudyStatus:
    """:func:`study_status` kept up to date: each call reads only the trials finished since the last one (a
    :class:`~nas.search.study_trials.TrialIndex`) and keeps counts, the smallest latencies and the feasible front's
    values, never the trials (the multi-worker parent asks every second; it re-read the whole study each time)."""

    def __init__(self, study, objectives: Objectives):
        self.objectives, self._index = objectives, TrialIndex(study)
        self._complete = self._feasible = 0
        self._front: list[tuple] = []  # objective values of the feasible front (ties kept)
        self._smallest: dict[str, float] = {}

    def __call__(self) -> dict[str, Any]:
        import numpy as np
        from optuna.trial import TrialState

        finished, _ = self._index.refresh()
        new = []
        for t in finished:
            if t.state != TrialState.COMPLETE:
                continue
            self._complete += 1
            if t.user_attrs.get("metrics", {}).get("feasible", True):
                self._feasible += 1
                new.append(tuple(t.values))
            if "metrics" in t.user_attrs:
                for d in self.objectives.devices:
                    v = t.user_attrs["metrics"][f"latency_ms.{d}"]
                    self._smallest[d] = min(self._smallest.get(d, v), v)
        if new:  # a point off the front stays off it: the front of (front + new) is the front of all
            values = self._front + new
            mask = pareto_mask(np.array(values, dtype=float), self.objectives.directions)
            self._front = [v for v, keep in zip(values, mask) if keep]
        return {"complete": self._complete, "feasible": self._feasible, "front": len(self._front),
                "smallest_latency_ms": {d: self._smallest[d] for d in self.objectives.devices if d in self._smallest}}
