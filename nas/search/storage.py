"""Optuna storage from a URL, with crash safety: a worker killed mid-trial loses nothing.

- ``sqlite:///file.db`` (the default) and ``postgresql://...``: Optuna's RDBStorage.
- ``journal:FILE.journal`` (relative to the working folder, like ``sqlite:///FILE.db``; ``journal:///abs/FILE.journal``
  is an absolute path, as in a ``file://`` URL; any path ending in ``.journal`` works too): Optuna's
  JournalFileBackend, the fast choice for several local processes.

On every storage a running trial beats (:class:`TrialHeartbeat`) and a RUNNING trial whose beats stopped is
failed and its parameters re-enqueued (:class:`StaleTrials`). No two hosts' clocks are ever compared: on an RDB
storage a beat is Optuna's ``trial_heartbeats`` row, stamped with the database's own ``now()``, and its age is
the database's ``now()`` minus it; on a journal a beat is a counter, and a trial is stale when the checking
process has watched it stand still for the grace period on its own monotonic clock (as is a trial whose RDB
row is not written yet: a worker killed right after creating it). The grace is ``NAS_HEARTBEAT_GRACE_S`` or,
if longer, twice the study's median trial time. Optuna's own RDB heartbeat is not used (one rule, not two).
"""
from __future__ import annotations

import functools

import logging
import math
import os
import re
import statistics
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from nas.errors import NasError, first_line

GRACE_ENV = "NAS_HEARTBEAT_GRACE_S"
DEFAULT_GRACE_S = 10.0  # raise it on slow shared file systems or for workers that may be paused
GRACE_TRIAL_FACTOR = 2.0  # the grace is at least this many median trial times of the study
# overrides for tests and embedding (None: from the environment): the base grace and the beat interval
GRACE_PERIOD_S: float | None = None
HEARTBEAT_INTERVAL_S: float | None = None
MAX_RETRY = 3
DEFAULT_STORAGE = "sqlite:///nas-studies.db"
DEFAULT_JOURNAL = "journal:nas-studies.journal"  # the working folder, like DEFAULT_STORAGE

logger = logging.getLogger(__name__)


# scheme://user:password@ as SQLAlchemy's URL grammar reads it (a password runs to the next '@')
_USERINFO = re.compile(r"^(?P<head>[\w+]+://[^:/]*):(?P<password>[^@]*)@")


def public_url(url: str, *, password: str | None = "***") -> str:
    """``url`` safe to show or store: its password replaced by ``password``, or left out (``None``: for a
    command to paste, which then reads it from PGPASSWORD or ~/.pgpass). A URL without a password is unchanged.
    Every URL this package prints, stores (cards, reports) or puts into an error goes through here."""
    m = _USERINFO.match(url)
    if m is None:
        return url
    return f"{m['head']}{'' if password is None else ':' + password}@{url[m.end():]}"


def _scrub(text: str, url: str) -> str:
    """``text`` (e.g. a driver's message) with ``url`` and its password masked."""
    m = _USERINFO.match(url)
    text = text.replace(url, public_url(url))
    return text.replace(m["password"], "***") if m is not None and len(m["password"]) >= 3 else text


def is_journal(url: str) -> bool:
    return url.startswith("journal:") or url.endswith(".journal")


def journal_path(url: str) -> Path:
    """The file of a journal URL: ``journal:FILE`` relative to the working folder, ``journal:///abs/FILE``
    absolute (``journal:////abs/FILE`` too: a ``//`` lead is one root, not POSIX's implementation-defined one)."""
    text = url.split("journal://", 1)[1] if url.startswith("journal://") else url.removeprefix("journal:")
    return Path("/" + text.lstrip("/") if text.startswith("//") else text)


def _check_journal_path(path: Path, url: str) -> None:
    """A journal file directly in the filesystem root is the ``journal:///FILE`` slip (three slashes make an
    absolute path here, unlike in ``sqlite:///FILE``): every project on the machine would share it."""
    if path.is_absolute() and path.parent == Path(path.anchor):
        raise NasError(f"storage {url} is {path}, at the filesystem root", argument="storage",
                       fix=f"for the working folder write journal:{path.name} (journal:///abs/folder/{path.name} "
                           "for an absolute path)")


def open_storage(url: str):
    """An Optuna storage for ``url``; unreachable or malformed URLs raise a one-line NasError."""
    if is_journal(url):
        return _open_journal(url)
    if not url.startswith(("sqlite:", "postgresql", "mysql")):
        raise NasError(f"unsupported storage URL {public_url(url)}", argument="storage",
                       fix="use sqlite:///FILE.db, journal:FILE.journal or postgresql://USER@HOST/DB")
    if url.startswith("sqlite:///"):
        _make_parent(Path(url.removeprefix("sqlite:///")), url)
    storage = _open_rdb(url)
    if url.startswith("sqlite:"):
        _sqlite_wal(storage.engine)
    return storage


def stored_config(url: str, study_name: str) -> dict | None:
    """The search config a study recorded (``config`` user attribute), or None if there is no such study yet.
    Creates nothing: a SQLite or journal file that does not exist has no studies."""
    if is_journal(url):
        if not journal_path(url).is_file():
            return None
    elif url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return None
    storage = open_storage(url)
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(study_id).get("config")


def _open_journal(url: str):
    from optuna.storages.journal import JournalFileSymlinkLock

    path = journal_path(url)
    _check_journal_path(path, url)
    _make_parent(path, url)
    # a worker killed while holding the file lock leaves it behind; it is stale after the grace period
    lock = JournalFileSymlinkLock(str(path), grace_period=int(math.ceil(base_grace_s())))
    return _journal_storage_class()(_journal_backend_class()(str(path), lock_obj=lock))


@functools.cache
def _journal_storage_class():
    """JournalStorage whose listings of unfinished trials skip the study's leading finished ones.

    Optuna asks for the WAITING trials before every trial (``Study.ask``), and its journal storage answers by
    walking every trial of the study (~1 us each: 10 ms a trial at 10,000 trials). A finished trial never
    changes state again, so a listing that asks only for unfinished states can start after the longest run of
    finished trials seen so far. Reads Optuna's replay state (``_replay_result``); anything else, and any
    other Optuna version's layout, falls back to Optuna's own listing."""
    import copy

    import optuna

    class PrefixSkippingJournalStorage(optuna.storages.JournalStorage):
        def get_all_trials(self, study_id, deepcopy=True, states=None):
            if states is None or any(s.is_finished() for s in states):
                return super().get_all_trials(study_id, deepcopy=deepcopy, states=states)
            with self._thread_lock:
                self._sync_with_backend()
                replay = self._replay_result
                ids = getattr(replay, "_study_id_to_trial_ids", {}).get(study_id)
                trials = getattr(replay, "_trials", None)
                if ids is None or trials is None:
                    return super().get_all_trials(study_id, deepcopy=deepcopy, states=states)
                prefix = self.__dict__.setdefault("_finished_prefix", {})
                low = prefix.get(study_id, 0)
                while low < len(ids) and trials[ids[low]].state.is_finished():
                    low += 1
                prefix[study_id] = low
                found = [trials[i] for i in ids[low:] if trials[i].state in states]
            return copy.deepcopy(found) if deepcopy else found

        def set_trial_params(self, trial_id, params) -> None:
            """Set several parameters of a running trial (``{name: (value, distribution)}``) in one append:
            each is still its own SET_TRIAL_PARAM record, as ``set_trial_param`` writes it, but one lock, one
            write and one read-back serve them all (a define-by-run trial otherwise pays each of its ~20-100
            choices as a journal round trip)."""
            from optuna.distributions import distribution_to_json
            from optuna.storages.journal._storage import JournalOperation

            with self._thread_lock:
                worker = self._replay_result.worker_id
                self._backend.append_logs([
                    {"op_code": JournalOperation.SET_TRIAL_PARAM, "worker_id": worker, "trial_id": trial_id,
                     "param_name": name, "param_value_internal": dist.to_internal_repr(value),
                     "distribution": distribution_to_json(dist)} for name, (value, dist) in params.items()])
                self._sync_with_backend()

    return PrefixSkippingJournalStorage


def _open_rdb(url: str):
    import optuna

    engine_kwargs = {"connect_args": {"connect_timeout": 5}} if url.startswith("postgresql") else None
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except Exception as exc:  # sqlalchemy raises many types; all mean "cannot use this URL"
        first = _scrub(first_line(exc), url)
        if "Failed to import DB access module" in first:
            package, install = driver_hint(url)
            raise NasError(f"storage {public_url(url)} needs the {package} driver, which is not installed",
                           argument="storage", fix=install) from None
        raise NasError(f"cannot open storage {public_url(url)} ({first})", argument="storage",
                       fix="check that the server is running and the URL, user and database are right") from None


# SQLAlchemy's name of a DB-API driver -> (the package that provides it, how to install it)
DRIVER_PACKAGES = {
    "psycopg": ("psycopg", "pip install 'psycopg[binary]' (or: pip install -e '.[postgres]')"),
    "psycopg2": ("psycopg2", "pip install psycopg2-binary"),
    "pg8000": ("pg8000", "pip install pg8000"),
    "mysqldb": ("mysqlclient", "pip install mysqlclient"),
    "pymysql": ("PyMySQL", "pip install PyMySQL"),
    "mysqlconnector": ("mysql-connector-python", "pip install mysql-connector-python"),
    "mariadbconnector": ("mariadb", "pip install mariadb"),
}


def driver_hint(url: str) -> tuple[str, str]:
    """(package, install command) of the DB-API driver a database URL needs: the one named after ``+`` in
    ``dialect+driver://``, else the dialect's default (SQLAlchemy's choice: postgresql -> psycopg, mysql ->
    mysqlclient)."""
    from sqlalchemy.engine import make_url

    try:
        driver = make_url(url).get_dialect().driver
    except Exception:  # a malformed URL or an unknown dialect/driver: name what the URL says
        driver = url.split("://", 1)[0].partition("+")[2] or url.split(":", 1)[0]
    return DRIVER_PACKAGES.get(driver, (driver, f"install the Python DB-API module '{driver}'"))


def _journal_backend_class():
    """JournalFileBackend without an fsync per record.

    Optuna fsyncs every appended record; a define-by-run trial of mobilenet-c10 writes ~100 records (one per
    choice), so fsync dominated the trial time (15 of 20 s for 40 trials here). Records still reach the
    kernel before the call returns, so other processes see them and a killed worker loses nothing; only
    a power cut can lose the last records (never corrupt earlier ones: each record is one appended line).
    """
    import json

    from optuna.storages.journal import JournalFileBackend
    from optuna.storages.journal._file import get_lock_file

    class ProcessSafeJournalFileBackend(JournalFileBackend):
        def append_logs(self, logs):
            text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
            with get_lock_file(self._lock):
                with open(self._file_path, "ab") as f:
                    f.write(text.encode("utf-8"))

    return ProcessSafeJournalFileBackend


def _make_parent(path: Path, url: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NasError(f"cannot create the folder {path.parent} for storage {url} ({exc.strerror})",
                       argument="storage", fix="choose a writable location") from None


def _sqlite_wal(engine) -> None:
    """WAL journal + synchronous=NORMAL: several times fewer fsyncs per trial, still crash-safe for the
    database (a power cut may lose the last trials, never corrupt the study)."""
    from sqlalchemy import event

    def on_connect(dbapi_connection, _record):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened before the listener are dropped


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


def rdb_of(storage):
    """The RDBStorage behind ``storage`` (Optuna wraps it in a cache), or None (journal, in memory)."""
    from optuna.storages import RDBStorage

    inner = getattr(storage, "_backend", storage)
    return inner if isinstance(inner, RDBStorage) else None


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


class SharedDistributions:
    """One copy of each parameter distribution across a study's finished trials, in the trials Optuna keeps.

    Optuna holds every trial of a study in memory (its RDB cache, a journal's replayed log), each read back with
    its own copy of every parameter's distribution: ~45 KB a trial for mobilenet-c10's 124 choices, 65 MB over
    1,500 trials. :meth:`share` gives each finished trial one object per distinct (name, distribution), and trials
    with the same distributions (every trial of a space without alternative blocks) one dict of them: the same
    values, one copy; parameter names (the keys of both dicts, read back per trial) are shared too. A trial is
    shared once (Optuna does not re-read finished trials)."""

    def __init__(self, study):
        self.study = study
        self._shared: dict[tuple, Any] = {}  # (name, repr of the distribution) -> the one copy
        self._dicts: dict[int, dict] = {}  # hash of the ids of a trial's shared distributions -> their one dict
        self._names: dict[str, str] = {}  # parameter name -> the one copy of the string
        self._done: set[int] = set()  # trial ids already shared

    def share(self) -> int:
        """Share the finished trials not seen yet (one listing, no copies); returns how many."""
        n = 0
        for t in self.study.get_trials(deepcopy=False):
            if t._trial_id in self._done or not t.state.is_finished():
                continue
            names = self._names
            dists = {names.setdefault(name, name): self._shared.setdefault((name, repr(d)), d)  # repr: (0, 1)
                     for name, d in t.distributions.items()}                                   # and (False, True)
            known = self._dicts.setdefault(hash(tuple(map(id, dists.values()))), dists)  # one copy per name
            same = len(known) == len(dists) and all(known.get(name) is d for name, d in dists.items())
            t.distributions = known if same else dists
            t.params = {names.setdefault(name, name): value for name, value in t.params.items()}
            self._done.add(t._trial_id)
            n += 1
        return n


class TrialIndex:
    """An incremental view of one study's trials by number, for what runs after every trial.

    ``study.get_trials`` walks every trial of the study (a Python loop in the journal storage: ~1 us a trial,
    so tens of ms a call at 10,000 trials); :meth:`refresh` reads only the trials it has not yet seen finished
    (trial numbers are contiguous per study), so its cost follows the trials added or still open."""

    def __init__(self, study):
        self.study = study
        self._next = 0  # trials [0, _next) have been seen
        self._open: dict[int, int] = {}  # number -> trial id of the seen trials not yet finished

    def refresh(self) -> tuple[list, list]:
        """(trials finished since the last refresh, trials still running or waiting), each in number order.
        The first refresh reads the whole study in one listing (one query on a database, not one per trial)."""
        storage, study_id = self.study._storage, self.study._study_id
        if self._next == 0:
            everything = self.study.get_trials(deepcopy=False)  # in number order
            self._next = len(everything)
            self._open = {t.number: t._trial_id for t in everything if not t.state.is_finished()}
            return ([t for t in everything if t.state.is_finished()],
                    [t for t in everything if not t.state.is_finished()])
        while True:
            try:
                self._open[self._next] = storage.get_trial_id_from_study_id_trial_number(study_id, self._next)
            except KeyError:
                break
            self._next += 1
        finished, unfinished = [], []
        for number in sorted(self._open):
            t = storage.get_trial(self._open[number])
            if t.state.is_finished():
                finished.append(t)
                del self._open[number]
            else:
                unfinished.append(t)
        return finished, unfinished


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
        self._rdb = rdb_of(study._storage)
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
        if self._rdb is None:
            return {}
        import sqlalchemy
        from optuna.storages._rdb import models
        from optuna.trial import TrialState

        beats = models.TrialHeartbeatModel
        query = (sqlalchemy.select(beats.trial_id, beats.heartbeat).join(models.TrialModel)
                 .where(models.TrialModel.study_id == self.study._study_id,
                        models.TrialModel.state == TrialState.RUNNING))
        with self._rdb.engine.connect() as conn:
            now = conn.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar_one()
            rows = conn.execute(query).all()
        now = _naive(now)
        return {trial_id: (now - _naive(beat)).total_seconds() for trial_id, beat in rows}

    def stale(self, running) -> tuple[list, list]:
        """(stale trials, undecided ones: watched, never seen to beat, not yet stale) among ``running``."""
        grace, now, ages = self.grace(), time.monotonic(), self._db_ages()
        stale, undecided, running_ids = [], [], set()
        for t in running:
            if t.state.name != "RUNNING":
                continue
            running_ids.add(t._trial_id)
            if t._trial_id in ages:
                if ages[t._trial_id] > grace:
                    stale.append(t)
                continue
            beat = t.system_attrs.get("heartbeat")
            seen = self._watched.get(t._trial_id)
            if seen is None or seen[0] != beat:
                self._watched[t._trial_id] = (beat, now, seen is not None)
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
        storage = self.study._storage
        failed, deadline = [], time.monotonic() + self.grace() + interval_s()
        while True:
            stale, undecided = self.stale(running)
            failed += self._fail(stale)
            if not undecided or time.monotonic() > deadline:
                return failed
            time.sleep(max(0.05, min(interval_s(), 0.5)))
            running = [storage.get_trial(t._trial_id) for t in undecided]

    def _fail(self, stale) -> list[int]:
        from optuna.trial import TrialState

        failed = []
        for t in stale:
            try:
                if not self.study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                    continue
            except Exception:  # another worker failed it first
                continue
            self._watched.pop(t._trial_id, None)
            failed.append(t.number)
            retries = int(t.system_attrs.get("retry_count", 0))
            if retries < MAX_RETRY:
                requeue(self.study, t, retries + 1)
        return failed


def _naive(moment):
    """A database timestamp without its time zone (Optuna stores naive ones; PostgreSQL's now() has one)."""
    return moment.replace(tzinfo=None)


def fail_stale_trials(study, running=None, checker: StaleTrials | None = None) -> list[int]:
    """``checker.fail(running)`` (a fresh :class:`StaleTrials` when None: it can decide on RDB heartbeat rows at
    once, on watched trials only from its second look)."""
    return (checker or StaleTrials(study)).fail(running)


def requeue(study, trial, retry_count: int) -> int:
    """A new WAITING trial with ``trial``'s parameters; returns its id.

    One storage call creates it with every attribute (the parameters to re-run, ``retry_count`` so a trial
    that always kills its worker is not retried forever, ``retried_from``), so no other worker can pick it or
    enqueue in between and no search for "the last waiting trial" is needed."""
    from optuna.trial import TrialState, create_trial

    template = create_trial(state=TrialState.WAITING, user_attrs={"retried_from": trial.number},
                            system_attrs={"fixed_params": dict(trial.params), "retry_count": retry_count})
    return study._storage.create_new_trial(study._study_id, template_trial=template)
