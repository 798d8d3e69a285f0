"""Crash safety of a search: a running trial beats (:class:`TrialHeartbeat`); a RUNNING trial whose beats stopped
is failed and its parameters re-enqueued (:class:`StaleTrials`, :func:`requeue`), so a worker killed mid-trial
loses nothing.

No two hosts' clocks are ever compared: on an RDB storage a beat is Optuna's ``trial_heartbeats`` row, stamped
with the database's own ``now()``, and its age is the database's ``now()`` minus it; on a journal a beat is a
counter, and a trial is stale when the checking process has watched it stand still for the grace period on its
own monotonic clock (as is a trial whose RDB row is not written yet: a worker killed right after creating it).
The grace is ``NAS_HEARTBEAT_GRACE_S`` or, if longer, twice the study's median trial time. Optuna's own RDB
heartbeat is not used (one rule, not two).
"""
from __future__ import annotations

import logging
import math
import os
import statistics
import threading
import time
from collections import deque
from typing import Any

from nas.errors import NasError, first_line
from nas.optuna_compat import rdb_heartbeat_ages, rdb_of, storage_of, study_id_of, trial_id_of

GRACE_ENV = "NAS_HEARTBEAT_GRACE_S"
DEFAULT_GRACE_S = 10.0  # raise it on slow shared file systems or for workers that may be paused
GRACE_TRIAL_FACTOR = 2.0  # the grace is at least this many median trial times of the study
# overrides for tests and embedding (None: from the environment): the base grace and the beat interval
GRACE_PERIOD_S: float | None = None
HEARTBEAT_INTERVAL_S: float | None = None
MAX_RETRY = 3

logger = logging.getLogger(__name__)


def base_grace_s() -> float:
    """Seconds a trial's beats may stand still before another worker takes the trial over (before scaling with
    the trial time): ``GRACE_PERIOD_S`` if set, else ``$NAS_HEARTBEAT_GRACE_S`` (default 10), a number >= 1."""
    if GRACE_PERIOD_S is not None:
        return float(GRACE_PERIOD_S)
    text = os.environ.get(GRACE_ENV, "").strip()
    if not text:
        return DEFAULT_GRACE_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1):
        raise NasError(f"${GRACE_ENV} must be a number of seconds >= 1, got {text!r}", where=f"${GRACE_ENV}",
                       fix=f"e.g. {GRACE_ENV}=30 for workers that may be paused or a slow shared file system; "
                           "unset it for the default 10")
    return value


def interval_s() -> float:
    """Seconds between a running trial's beats: ``HEARTBEAT_INTERVAL_S`` if set, else a fifth of the base grace."""
    return float(HEARTBEAT_INTERVAL_S) if HEARTBEAT_INTERVAL_S is not None else base_grace_s() / 5



def retry_delay(failures: int) -> float:
    """Seconds to the next beat after ``failures`` failed writes in a row: the interval when none, else an
    eighth of it, doubling per failure, at most the interval."""
    interval = interval_s()
    if failures == 0:
        return interval
    return min(interval, interval / 8 * 2 ** (failures - 1))


class TrialHeartbeat:
    """Heartbeat for one running trial: a daemon thread that beats every :func:`interval_s` seconds. On an RDB
    storage a beat is Optuna's ``trial_heartbeats`` row, stamped by the database (``record_heartbeat``); on
    others the trial's ``heartbeat`` system attribute counts up (1, 2, 3, ...). No beat carries this host's time.

    It ends with its trial: when ``stop()`` is called, or when a write fails because the trial is no longer
    RUNNING (finished, or failed as stale by another worker). Any other failed write is transient (a locked
    database, a dropped connection): it is logged once per trial and retried with exponential back-off from
    an eighth of the interval up to the interval, so the beats never space out further than usual and the
    trial stays fresh as long as the storage answers within the grace period.
    """

    def __init__(self, storage, trial_id: int):
        self.storage, self.trial_id = storage, trial_id
        self._rdb = rdb_of(storage)
        self._count = 0
        self._stop = threading.Event()
        self._warned = False
        failures = 0 if self._beat() else 1
        self._thread = threading.Thread(target=self._run, args=(failures,), daemon=True,
                                        name=f"nas-heartbeat-{trial_id}")
        self._thread.start()

    def _write(self) -> None:
        if self._rdb is not None:
            self._rdb.record_heartbeat(self.trial_id)  # the database's clock
        else:
            self.storage.set_trial_system_attr(self.trial_id, "heartbeat", self._count + 1)
        self._count += 1

    def _beat(self) -> bool | None:
        """True: beaten; False: a transient failure; None: the trial is over (nothing left to keep alive)."""
        from optuna.trial import TrialState

        try:
            self._write()
            return True
        except Exception as exc:  # storages raise many types; the trial's state tells which kind this is
            try:
                trial = self.storage.get_trial(self.trial_id)
            except Exception:  # the storage is unreachable: the trial is presumed alive, keep beating
                trial = None
            if self._stop.is_set() or (trial is not None and trial.state != TrialState.RUNNING):
                return None
            if not self._warned:
                self._warned = True
                logger.warning("heartbeat of trial %s: storage error (%s: %s); retrying with back-off",
                               trial.number if trial is not None else f"id {self.trial_id}", type(exc).__name__,
                               first_line(exc))
            return False

    def _run(self, failures: int) -> None:
        while not self._stop.wait(retry_delay(failures)):
            beaten = self._beat()
            if beaten is None:
                return
            failures = 0 if beaten else failures + 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=interval_s() * 2)


class StaleTrials:
    """Finds and fails the RUNNING trials of one study whose worker stopped, without comparing two hosts' clocks
    (see the module's notes), and re-enqueues their parameters (up to MAX_RETRY times).

    A trial with an RDB heartbeat row is stale when the database's ``now()`` is more than the grace past its
    last beat. Any other RUNNING trial (a journal's counter, or no row yet) is watched: stale when this object
    has seen its beat stand still for the grace on this process's monotonic clock, so a process must watch
    for a grace before it can call such a trial stale (:meth:`settle` waits for that at the start of a run).
    The grace is :func:`base_grace_s` or, if longer, ``GRACE_TRIAL_FACTOR`` x the median time of the study's
    last complete trials (each timed on its own worker's clock): a long trial's worker may be paused or starved
    for longer before its trial is taken from it."""

    def __init__(self, study):
        self.study = study
        self._rdb = rdb_of(storage_of(study))
        self._watched: dict[int, tuple[Any, float, bool]] = {}  # trial id -> (beat, since when, seen to change)
        self._durations: deque[float] = deque(maxlen=50)  # seconds of the last complete trials

    def observe(self, finished) -> None:
        """Take the times of newly finished trials into the grace."""
        for t in finished:
            if t.state.name == "COMPLETE" and t.datetime_start and t.datetime_complete:
                self._durations.append((t.datetime_complete - t.datetime_start).total_seconds())

    def grace(self) -> float:
        median = statistics.median(self._durations) if self._durations else 0.0
        return max(base_grace_s(), GRACE_TRIAL_FACTOR * median)

    def _db_ages(self) -> dict[int, float]:
        """Seconds since each RUNNING trial's last heartbeat row, by the database's clock (RDB storages)."""
        return {} if self._rdb is None else rdb_heartbeat_ages(self._rdb, study_id_of(self.study))

    def stale(self, running) -> tuple[list, list]:
        """(stale trials, undecided ones: watched, never seen to beat, not yet stale) among ``running``."""
        grace, now, ages = self.grace(), time.monotonic(), self._db_ages()
        stale, undecided, running_ids = [], [], set()
        for t in running:
            if t.state.name != "RUNNING":
                continue
            trial_id = trial_id_of(t)
            running_ids.add(trial_id)
            if trial_id in ages:
                if ages[trial_id] > grace:
                    stale.append(t)
                continue
            beat = t.system_attrs.get("heartbeat")
            seen = self._watched.get(trial_id)
            if seen is None or seen[0] != beat:
                self._watched[trial_id] = (beat, now, seen is not None)
                if seen is None:
                    undecided.append(t)
            elif now - seen[1] > grace:
                stale.append(t)
            elif not seen[2]:
                undecided.append(t)
        self._watched = {k: v for k, v in self._watched.items() if k in running_ids}
        return stale, undecided

    def fail(self, running=None) -> list[int]:
        """Fail the stale trials among ``running`` (the study's unfinished trials if the caller has them, else
        they are read) and re-enqueue their parameters; returns the numbers of the trials it failed."""
        from optuna.trial import TrialState

        if running is None:
            running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return self._fail(self.stale(running)[0])

    def settle(self, running) -> list[int]:
        """:meth:`fail` ``running``, then watch the trials it cannot decide on yet (no beat seen to change) until
        each beats or goes stale: a run that starts after a crash re-queues the crashed trials before its own."""
        storage = storage_of(self.study)
        failed, deadline = [], time.monotonic() + self.grace() + interval_s()
        while True:
            stale, undecided = self.stale(running)
            failed += self._fail(stale)
            if not undecided or time.monotonic() > deadline:
                return failed
            time.sleep(max(0.05, min(interval_s(), 0.5)))
            running = [storage.get_trial(trial_id_of(t)) for t in undecided]

    def _fail(self, stale) -> list[int]:
        from optuna.trial import TrialState

        failed = []
        for t in stale:
            try:
                if not storage_of(self.study).set_trial_state_values(trial_id_of(t), state=TrialState.FAIL):
                    continue
            except Exception:  # another worker failed it first
                continue
            self._watched.pop(trial_id_of(t), None)
            failed.append(t.number)
            retries = int(t.system_attrs.get("retry_count", 0))
            if retries < MAX_RETRY:
                requeue(self.study, t, retries + 1)
        return failed


def requeue(study, trial, retry_count: int) -> int:
    """A new WAITING trial with ``trial``'s parameters; returns its id.

    One storage call creates it with every attribute (the parameters to re-run, ``retry_count`` so a trial
    that always kills its worker is not retried forever, ``retried_from``), so no other worker can pick it or
    enqueue in between and no search for "the last waiting trial" is needed."""
    from optuna.trial import TrialState, create_trial

    template = create_trial(state=TrialState.WAITING, user_attrs={"retried_from": trial.number},
                            system_attrs={"fixed_params": dict(trial.params), "retry_count": retry_count})
    return storage_of(study).create_new_trial(study_id_of(study), template_trial=template)
