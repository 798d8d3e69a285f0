"""FrontSampler: spend proxy evaluations where the Pareto front is.

Latency, size and energy are table lookups, free next to the proxy. So before each trial the sampler

1. keeps a pool of candidates (random architectures and mutations of front members) with their cheap
   objectives, dropping any that break a budget (an infeasible candidate is never proposed) or build a network
   that is already scored or running (so no trial is spent twice on one network);
2. predicts each candidate's proxy score with a Bayesian linear surrogate (one-hot choices, per-field counts,
   log params / MACs / latency; ridge strength by generalised cross-validation: :mod:`nas.search.surrogate`)
   fitted to the study's scored trials;
3. proposes the candidate whose optimistic score (mean + ``kappa`` x standard deviation) adds the most
   hypervolume to the current feasible front, in all objectives at once (exact in two objectives, on the
   best candidates by margin in more: :func:`nas.search.hypervolume.hypervolume_gain`).

The first ``init`` trials are a design: first, for each cheap objective, the feasible network that minimises
it (coordinate descent on the table lookups from the best random candidate), so the front reaches the fastest
and smallest corners of the space however rarely random sampling goes there; then random candidates spread
along the first cheap objective. (Without the corners a 200-trial mobilenet-c10 study's front stopped at
0.88 ms while the space reaches 0.26 ms: the hypervolume gain of going further was too small to win against
proxy gains in the middle.) Settings follow the
budget (:meth:`FrontSettings.for_budget`). Optuna stays the engine and the storage: the sampler decides a whole
architecture in ``before_trial`` and answers each ``suggest_categorical`` from it. Everything it knows is
rebuilt from the study's trials, so resumed and multi-worker studies work (each worker avoids the networks the
others are running). A study sampled by it is deterministic under its seed in one process.
"""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from nas.errors import NasError
from nas.optuna_compat import storage_of, trial_id_of
from nas.search.hypervolume import SAMPLER_MARGIN, hypervolume_gain
from nas.search.study_trials import TrialIndex
from nas.search.surrogate import BayesianRidge, SufficientStats, features, vocabularies


@dataclass(frozen=True)
class FrontSettings:
    """How the sampler spends its screening: chosen by the budget of proxy-scored trials."""

    init: int  # random-design trials before the surrogate is used
    new_per_trial: int  # candidates screened (cheap objectives) and added to the pool per trial
    pool: int  # most candidates kept
    kappa: float  # optimism: mean + kappa x standard deviation
    refit_every: int  # trials between surrogate refits

    @classmethod
    def for_budget(cls, trials: int) -> "FrontSettings":
        """Small budgets screen many candidates per proxy evaluation; a 10,000-trial study (a cheap proxy)
        screens few and refits rarely, so the sampler stays a few ms a trial."""
        init = int(min(25, max(8, round(0.1 * trials))))
        if trials <= 1500:
            return cls(init=init, new_per_trial=48, pool=1024, kappa=1.0, refit_every=1)
        return cls(init=init, new_per_trial=2 if trials <= 5000 else 1, pool=256, kappa=1.0,
                   refit_every=max(1, trials // 250))


@dataclass
class _Point:
    params: dict[str, Any]
    features: np.ndarray
    objectives: np.ndarray  # minimised; the proxy (if an objective) negated
    network: bytes  # nas.layers.network_key
    feasible: bool = True
    violation: float = 0.0  # how far beyond the budgets (sum over constraints), 0 when feasible
    predicted: tuple | None = None  # (model, mean, std): the surrogate's prediction, by the model that made it


class FrontSampler(optuna.samplers.BaseSampler):
    """An Optuna sampler for :func:`nas.search.create_search`, which binds it to
    the space, the evaluator, the objectives and the budgets (:meth:`bind`) before the first trial."""

    def __init__(self, *, seed: int = 0, trials: int = 200, settings: FrontSettings | None = None):
        self.seed, self.trials = seed, trials
        self.settings = settings or FrontSettings.for_budget(trials)
        self._fallback = optuna.samplers.RandomSampler(seed=seed)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._bound = False

    # --- Optuna's sampler interface ------------------------------------------------------------------
    def infer_relative_search_space(self, study, trial) -> dict:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict:
        return {}

    def sample_independent(self, study, trial, param_name: str, param_distribution) -> Any:
        proposal = self._proposals.get(trial_id_of(trial), {}) if self._bound else {}
        value = proposal.get(param_name)
        if value is not None and value in getattr(param_distribution, "choices", ()):
            return value
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        if not self._bound or trial.system_attrs.get("fixed_params"):
            return  # an enqueued trial (a retried one) brings its own parameters
        with self._lock:
            self._sync(study, trial.number)
            proposal = self._propose()
            if proposal is not None:
                self._proposals[trial_id_of(trial)] = proposal
                self._prefill(study, trial, proposal)

    def _prefill(self, study, trial, proposal: dict) -> None:
        """Where the storage writes many parameters at once (``set_trial_params``: the journal storage), write
        the proposal's choices, with the exact distributions the objective will suggest them with, in one call
        and hand them to ``trial``: the objective's ``suggest_categorical`` calls then read them back instead
        of each being a storage round trip. Elsewhere (or if Optuna hands a copy of the trial) each suggest
        writes its choice as usual; the trial's parameters are the same either way."""
        write = getattr(storage_of(study), "set_trial_params", None)
        if write is None or trial.params:
            return
        asked: dict[str, tuple] = {}

        def ask(name, options):
            asked[name] = (proposal[name], optuna.distributions.CategoricalDistribution(options))
            return proposal[name]

        try:
            self.space.sample(ask)
        except (KeyError, NasError):
            return  # not a whole architecture of this space: the objective asks Optuna choice by choice
        write(trial_id_of(trial), asked)
        trial.params = {**trial.params, **{name: value for name, (value, _) in asked.items()}}
        trial.distributions = {**trial.distributions, **{name: dist for name, (_, dist) in asked.items()}}

    def after_trial(self, study, trial, state, values) -> None:
        if self._bound:
            self._proposals.pop(trial_id_of(trial), None)

    def reseed_rng(self) -> None:
        self._fallback.reseed_rng()

    # --- binding --------------------------------------------------------------------------------------
    def bind(self, space, evaluator, objectives, budgets) -> "FrontSampler":
        """Attach the search's space, Evaluator (its :meth:`~nas.search.evaluator.Evaluator.cheap` metrics),
        Objectives and Budgets; called by ``create_search``."""
        if self._bound and (space.name, tuple(objectives.columns)) != self._binding:
            raise NasError("this FrontSampler is already bound to another search", argument="sampler",
                           fix="create one sampler per search")
        self.space, self.evaluator, self.objectives, self.budgets = space, evaluator, objectives, budgets
        self._binding = (space.name, tuple(objectives.columns))
        self._columns = objectives.columns
        self._signs = np.array([-1.0 if d == "maximize" else 1.0 for d in objectives.directions])
        proxy_col = f"proxy.{objectives.proxy}"
        self._proxy = self._columns.index(proxy_col) if proxy_col in self._columns else None
        self._vocab, self._fields = vocabularies(space)
        self._scored = 0  # scored trials learnt (only the front keeps its points: parents of mutants)
        self._front: list[_Point] = []  # the feasible front of the points, kept up to date as points arrive
        self._stats = SufficientStats(len(self._vocab) + len(self._fields) + 2 + len(objectives.devices))
        self._index = None  # a TrialIndex of the study, made at the first trial
        self._taken: set[bytes] = set()  # networks scored, running or proposed
        self._pool: dict[bytes, _Point] = {}
        self._proposals: dict[int, dict] = {}
        self._design: list[_Point] | None = None
        self._model = None
        self._since_fit = 0
        self._bound = True
        return self

    # --- what the study holds -------------------------------------------------------------------------
    def _sync(self, study, current: int) -> None:
        """Learn every newly finished trial; mark the networks of running trials (other workers) as taken."""
        from optuna.trial import TrialState

        if self._index is None or self._index.study is not study:
            self._index = TrialIndex(study)  # reads only new and open trials: O(1) a trial in a long study
        finished, unfinished = self._index.refresh()
        for t in finished:
            if t.state == TrialState.COMPLETE and t.values is not None and "metrics" in t.user_attrs:
                point = self._point_of_trial(t)
                if point is not None:
                    self._taken.add(point.network)
                    if np.isfinite(point.objectives).all() and np.abs(point.objectives).max() < 1e299:
                        point.feasible = bool(t.user_attrs["metrics"].get("feasible", True))
                        self._add(point)
        for t in unfinished:
            if t.number != current:
                arch = self._arch_of(t.params)
                if arch is not None:
                    self._taken.add(self.evaluator.network(arch))

    def _arch_of(self, params: dict):
        try:
            return self.space.sample(lambda name, _options: params[name])
        except (KeyError, NasError):
            return None

    def _point_of_trial(self, t) -> _Point | None:
        arch = self._arch_of(t.params)
        if arch is None:
            return None
        metrics = t.user_attrs["metrics"]
        objectives = np.array(t.values, dtype=float) * self._signs
        return _Point(t.params, self._features(arch, metrics, t.params), objectives,  # t.params: not copied
                      self.evaluator.network(arch))

    # --- candidates -----------------------------------------------------------------------------------
    def _candidate(self, drawn, *, infeasible: bool = False) -> _Point | None:
        """A feasible (or, with ``infeasible``, any), not yet taken candidate with its cheap objectives (the proxy
        slot is NaN) and its budget violation. ``drawn``: (architecture, the answers that drew it)."""
        arch, answers = drawn
        network = self.evaluator.network(arch)
        if network in self._taken or network in self._pool:
            return None
        metrics = self.evaluator.cheap(arch)
        violation = sum(max(0.0, v) for v in self.budgets.constraints(metrics, self.objectives.devices).values())
        if violation > 0 and not infeasible:
            return None
        objectives = np.array([np.nan if i == self._proxy else float(metrics[c]) * s
                               for i, (c, s) in enumerate(zip(self._columns, self._signs))])
        return _Point(answers, self._features(arch, metrics, answers), objectives, network,
                      feasible=violation <= 0, violation=violation)

    def _draw(self, parent: dict[str, Any] | None = None):
        """(architecture, answers): a random one, or a mutant of ``parent``'s answers (each changed with
        probability 1.5 / their number)."""
        rng = self._rng
        rate = 1.5 / max(1, len(parent)) if parent else 1.0
        answers: dict[str, Any] = {}

        def choose(name, options):
            if parent and name in parent and parent[name] in options and rng.random() > rate:
                value = parent[name]
            else:
                value = options[rng.randrange(len(options))]
            answers[name] = value
            return value

        return self.space.sample(choose), answers

    def _grow_pool(self, n: int) -> None:
        front = self._front
        for i in range(n):
            c = self._candidate(self._draw(self._rng.choice(front).params if front and i % 3 else None))
            if c is not None:
                self._pool[c.network] = c

    def _initial_design(self) -> list[_Point]:
        """``init`` feasible random candidates spread along the first cheap objective (latency). When no random
        architecture meets the budgets, the nearest ones (the search then reports that nothing met them)."""
        pool: dict[bytes, _Point] = {}
        for _ in range(30 * self.settings.init):
            c = self._candidate(self._draw(), infeasible=True)
            if c is not None:
                pool.setdefault(c.network, c)
            if sum(p.feasible for p in pool.values()) >= 20 * self.settings.init:
                break
        cands = [c for c in pool.values() if c.feasible]
        if not cands:
            return sorted(pool.values(), key=lambda c: c.violation)[: self.settings.init]
        axes = [i for i in range(len(self._columns)) if i != self._proxy]
        corners: dict[bytes, _Point] = {}
        for i in axes:
            corner = self._descend(min(cands, key=lambda c: c.objectives[i]), i)
            if corner is not None:
                corners.setdefault(corner.network, corner)
        corners = dict(list(corners.items())[: self.settings.init])
        rest = [c for c in cands if c.network not in corners]
        if axes:
            rest.sort(key=lambda c: c.objectives[axes[0]])
        k = min(self.settings.init - len(corners), len(rest))
        picks = np.unique(np.round(np.linspace(0, len(rest) - 1, k)).astype(int)) if k > 0 else []
        return list(corners.values()) + [rest[i] for i in picks]

    def _descend(self, start: _Point, axis: int, max_passes: int = 5) -> _Point | None:
        """The feasible network reached from ``start`` by coordinate descent on cheap objective ``axis``: each
        choice in turn set to the option that lowers it most, budgets kept, until a pass changes nothing (or
        ``max_passes``). Only table lookups; None when the corner is already scored or running."""
        def sample(answers: dict) -> tuple:
            options: dict[str, list] = {}
            chosen: dict[str, Any] = {}

            def choose(name, opts):
                options[name] = list(opts)
                chosen[name] = answers[name] if answers.get(name) in opts else opts[0]
                return chosen[name]

            return self.space.sample(choose), chosen, options

        def value(arch) -> float:
            metrics = self.evaluator.cheap(arch)
            if any(v > 0 for v in self.budgets.constraints(metrics, self.objectives.devices).values()):
                return np.inf
            return float(metrics[self._columns[axis]]) * self._signs[axis]

        arch, answers, options = sample(start.params)
        best = value(arch)
        for _ in range(max_passes):
            changed = False
            for name in list(options):
                for option in options.get(name, ()):
                    if option == answers.get(name):
                        continue
                    a, ans, opts = sample({**answers, name: option})
                    v = value(a)
                    if v < best:
                        best, arch, answers, options, changed = v, a, ans, opts, True
            if not changed:
                break
        return self._candidate((arch, answers))

    # --- choosing -------------------------------------------------------------------------------------
    def _propose(self) -> dict | None:
        if self._design is None:
            self._design = self._initial_design()
        if self._scored < self.settings.init:
            while self._design:
                c = self._design.pop(0)
                if c.network not in self._taken:
                    self._taken.add(c.network)
                    return c.params
        for net in [n for n in self._pool if n in self._taken]:
            del self._pool[net]
        self._grow_pool(self.settings.new_per_trial)
        if not self._pool:
            self._grow_pool(10 * self.settings.new_per_trial)
            if not self._pool:
                return None  # nothing new is left to propose: Optuna's random sampler answers
        best = self._best_candidate()
        self._taken.add(best.network)
        self._pool.pop(best.network, None)
        return best.params

    def _best_candidate(self) -> _Point:
        """The pool's candidate of largest (optimistic) hypervolume gain; the pool is trimmed to its best."""
        cands = list(self._pool.values())
        if self._proxy is not None and self._scored < 3:  # too little to fit: any feasible new network
            return cands[self._rng.randrange(len(cands))]
        values = np.stack([c.objectives for c in cands])
        if self._proxy is not None:
            mean, std = self._predict(cands)
            values[:, self._proxy] = -(mean + self.settings.kappa * std)  # optimistic, minimised
        gain = hypervolume_gain(values, self._front_values(), margin=SAMPLER_MARGIN)
        excess = len(cands) - self.settings.pool
        if excess > 0:
            for i in np.argsort(gain)[:excess]:
                del self._pool[cands[i].network]
        return cands[int(np.argmax(gain))]

    def _add(self, point: _Point) -> None:
        """A scored trial: to the surrogate's data and, when no front member dominates it, to the front."""
        self._scored += 1
        if self._proxy is not None:
            self._stats.add(point.features, -float(point.objectives[self._proxy]))
        self._since_fit += 1
        if not point.feasible:
            return
        v = point.objectives
        if any(np.all(f.objectives <= v) and np.any(f.objectives < v) for f in self._front):
            return
        self._front = [f for f in self._front if not (np.all(v <= f.objectives) and np.any(v < f.objectives))]
        self._front.append(point)

    def _front_values(self) -> np.ndarray:
        front = self._front
        return np.stack([p.objectives for p in front]) if front else np.zeros((0, len(self._columns)))

    # --- surrogate ------------------------------------------------------------------------------------
    def _features(self, arch, metrics: dict, answers: dict) -> np.ndarray:
        return features(arch, answers, metrics, self._vocab, self._fields, self.objectives.devices)

    def _predict(self, cands: list[_Point]) -> tuple[np.ndarray, np.ndarray]:
        """The surrogate's mean and std for each candidate; refit every ``refit_every`` new points, and a
        candidate is predicted again only when the model changed."""
        if self._model is None or self._since_fit >= self.settings.refit_every:
            self._model = BayesianRidge.from_stats(self._stats)
            self._since_fit = 0
        model = self._model
        stale = [c for c in cands if c.predicted is None or c.predicted[0] is not model]
        if stale:
            mean, std = model.predict(np.stack([c.features for c in stale]))
            for c, m, sd in zip(stale, mean, std):
                c.predicted = (model, float(m), float(sd))
        return np.array([c.predicted[1] for c in cands]), np.array([c.predicted[2] for c in cands])
