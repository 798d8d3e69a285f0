"""Every use of Optuna's internals, each in one small named function, and the Optuna versions they are known to
work with (``SUPPORTED``, the pin in pyproject.toml).

Optuna's public API has no way to say some things a search needs: a trial's storage id, a study's storage and
id, the hypervolume of a point set, an RDB storage's heartbeat rows with the database's clock, and the journal
storage's replayed state (read to list unfinished trials without walking every finished one, and to write
many parameters in one append). Each is here, so an Optuna release that moves one breaks one function, which
``tests/test_optuna_compat.py`` exercises against the installed Optuna (real studies, SQLite and journal).
The first call checks the installed version once: outside ``SUPPORTED`` it is a NasError, not a wrong answer.
"""
from __future__ import annotations

import functools
from collections.abc import Container
from typing import Any

from nas.errors import NasError

SUPPORTED = ">=5.0,<6"  # trial.set_constraint is new in Optuna 5.0; 6 may move any internal used here
LOWEST, BELOW = (5, 0), (6, 0)  # the release range SUPPORTED spells: LOWEST <= version < BELOW


def check_version(version: str) -> None:
    """A NasError when Optuna ``version`` is outside :data:`SUPPORTED`."""
    from packaging.version import InvalidVersion, Version

    try:
        release = Version(version).release
    except InvalidVersion:
        release = None
    if release is None or not (LOWEST <= release[:2] < BELOW):
        raise NasError(f"Optuna {version} is installed; nas works with optuna{SUPPORTED}", where="optuna",
                       fix=f"pip install 'optuna{SUPPORTED}'")


@functools.cache
def _optuna():
    """Optuna, its version checked (once: the result is kept)."""
    import optuna

    check_version(optuna.__version__)
    return optuna


# --- studies and trials ------------------------------------------------------------------------------------
def trial_id_of(trial) -> int:
    """The storage's id of ``trial`` (an ``optuna.Trial`` or ``FrozenTrial``; not its number)."""
    _optuna()
    return trial._trial_id


def storage_of(study):
    """The storage ``study`` reads and writes (an RDB storage wrapped in Optuna's cache, as the study holds it)."""
    _optuna()
    return study._storage


def study_id_of(study) -> int:
    """The storage's id of ``study``."""
    _optuna()
    return study._study_id


# --- hypervolume -------------------------------------------------------------------------------------------
def compute_hypervolume(points, reference) -> float:
    """Hypervolume dominated by ``points`` (rows, every objective minimised) up to ``reference``; every point
    must be strictly better than ``reference`` in every objective."""
    _optuna()
    from optuna._hypervolume import compute_hypervolume as hypervolume

    return float(hypervolume(points, reference))


# --- RDB storages ------------------------------------------------------------------------------------------
def rdb_of(storage):
    """The RDBStorage behind ``storage`` (a study holds it wrapped in Optuna's cache), or None (a journal, in
    memory)."""
    optuna = _optuna()
    from optuna.storages._cached_storage import _CachedStorage

    inner = storage._backend if isinstance(storage, _CachedStorage) else storage
    return inner if isinstance(inner, optuna.storages.RDBStorage) else None


def rdb_heartbeat_ages(rdb, study_id: int) -> dict[int, float]:
    """Seconds since each RUNNING trial's last ``trial_heartbeats`` row in study ``study_id``, by trial id, all
    by the database's own clock (its ``now()`` minus the row's stamp): no host's clock is read."""
    _optuna()
    import sqlalchemy
    from optuna.storages._rdb import models
    from optuna.trial import TrialState

    beats = models.TrialHeartbeatModel
    query = (sqlalchemy.select(beats.trial_id, beats.heartbeat).join(models.TrialModel)
             .where(models.TrialModel.study_id == study_id, models.TrialModel.state == TrialState.RUNNING))
    with rdb.engine.connect() as conn:
        now = conn.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar_one()
        rows = conn.execute(query).all()
    now = _naive(now)
    return {trial_id: (now - _naive(beat)).total_seconds() for trial_id, beat in rows}


def _naive(moment):
    """A database timestamp without its time zone (Optuna stores naive ones; PostgreSQL's now() has one)."""
    return moment.replace(tzinfo=None)


# --- journal storages --------------------------------------------------------------------------------------
def journal_open_trials(storage, study_id: int, states: Container, prefix: dict[int, int]) -> list | None:
    """The trials of study ``study_id`` in ``states`` (unfinished states only), in number order, read from a
    JournalStorage's replayed log after the study's leading run of finished trials. ``prefix`` (study id ->
    length of that run) is the caller's memory of it, updated here: a finished trial never changes again, so
    each listing starts where the last one found an unfinished trial. The trials are the storage's own objects
    (not copies). None for an unknown study or a replay state laid out otherwise (list with Optuna's
    ``get_all_trials``)."""
    _optuna()
    with storage._thread_lock:
        storage._sync_with_backend()
        replay = storage._replay_result
        ids = getattr(replay, "_study_id_to_trial_ids", {}).get(study_id)
        trials = getattr(replay, "_trials", None)
        if ids is None or trials is None:
            return None
        low = prefix.get(study_id, 0)
        while low < len(ids) and trials[ids[low]].state.is_finished():
            low += 1
        prefix[study_id] = low
        return [trials[i] for i in ids[low:] if trials[i].state in states]


def journal_set_trial_params(storage, trial_id: int, params: dict[str, tuple[Any, Any]]) -> None:
    """Write several parameters of a running trial (``{name: (value, distribution)}``) to a JournalStorage in
    one append: each its own SET_TRIAL_PARAM record, as ``set_trial_param`` writes it, under one lock, one write
    and one read-back."""
    _optuna()
    from optuna.distributions import distribution_to_json
    from optuna.storages.journal._storage import JournalOperation

    with storage._thread_lock:
        worker = storage._replay_result.worker_id
        storage._backend.append_logs([
            {"op_code": JournalOperation.SET_TRIAL_PARAM, "worker_id": worker, "trial_id": trial_id,
             "param_name": name, "param_value_internal": dist.to_internal_repr(value),
             "distribution": distribution_to_json(dist)} for name, (value, dist) in params.items()])
        storage._sync_with_backend()


def journal_file_append(backend, data: bytes) -> None:
    """Append ``data`` to a JournalFileBackend's file under the backend's own inter-process lock, without the
    fsync Optuna's ``append_logs`` does (the bytes reach the kernel before this returns)."""
    _optuna()
    from optuna.storages.journal._file import get_lock_file

    with get_lock_file(backend._lock):
        with open(backend._file_path, "ab") as f:
            f.write(data)
